//! The response side: what a model's output may carry out, inspected as it streams.
//!
//! - [`TextStream`]: incremental inspection of one text channel with a bounded hold-back
//!   (PII, secrets, canaries, exfiltration links, system-prompt leakage).
//! - [`check_tool_call`]: a complete tool call's arguments against schemas, allowed values and
//!   the input detectors.
//! - [`check_json`]: structured output that must be JSON.
//!
//! Everything here works on text; SSE framing and provider shapes belong to the gateway.

pub mod leak;
pub mod links;
pub mod policy;
mod stream;
pub mod tools;

use std::ops::Range;

use serde_json::Value;

pub use leak::Protected;
pub use policy::{Links, OutputPolicy, OutputSpec, ToolRule};
pub use stream::{CONTEXT, MAX_PEM, Step, TextStream};

use crate::profile::Action;
use crate::{Guard, Part, Policy, Source};

/// Largest tool-call argument string inspected; a larger one is a finding itself.
pub const MAX_TOOL_ARGUMENTS: usize = 1 << 20;

/// What a response is inspected against: the engine, the route's policy, and what the request
/// brought (canaries injected into its system prompt, the system prompt's n-grams).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The detectors.
    pub guard: &'a Guard,
    /// The route's compiled profile.
    pub policy: &'a Policy,
    /// Canary strings whose appearance in the output means the system prompt leaked.
    pub canaries: &'a [String],
    /// The request's system prompt, for leak detection.
    pub protected: &'a Protected,
}

/// One thing found in a response. Never carries content.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutputFinding {
    /// `pii`, `secrets`, `canary`, `links`, `leak`, `tool`, `json`, or an input detector's
    /// name for tool arguments (`injection`).
    pub detector: &'static str,
    /// The entity, rule or check (`EMAIL_ADDRESS`, `github-pat`, `markdown-image:data-in-url`,
    /// `schema-violation`).
    pub kind: String,
    /// What the policy does about it.
    pub action: Action,
    /// Byte range in the channel's upstream text, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Range<usize>>,
    /// Confidence, or the leaked share for `leak`.
    pub score: f32,
}

impl OutputFinding {
    /// A finding about the whole output or call (no span), certain.
    fn whole(detector: &'static str, kind: impl Into<String>, action: Action) -> Self {
        Self {
            detector,
            kind: kind.into(),
            action,
            span: None,
            score: 1.0,
        }
    }

    /// `response.detector:kind:action`, for logs, metrics and the audit record.
    pub fn summary(&self) -> String {
        format!(
            "response.{}:{}:{}",
            self.detector,
            self.kind,
            self.action.as_str()
        )
    }
}

/// Checks one complete tool call. `declared` is the parameters schema the request gave for
/// the tool; a profile rule's own schema takes precedence.
pub fn check_tool_call(
    scope: &Scope<'_>,
    name: &str,
    arguments: &str,
    declared: Option<&Value>,
) -> Vec<OutputFinding> {
    let output = &scope.policy.profile().output;
    let action = output.tools;
    if action == Action::Off {
        return Vec::new();
    }
    if arguments.len() > MAX_TOOL_ARGUMENTS {
        return vec![OutputFinding::whole("tool", "arguments-too-large", action)];
    }
    let args = if arguments.trim().is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(v) => v,
            Err(_) => return vec![OutputFinding::whole("tool", "malformed-arguments", action)],
        }
    };
    let rule = output.tool_rules.iter().find(|r| r.name == name);
    let mut out = Vec::new();
    if let Some(schema) = rule.and_then(|r| r.schema.as_ref()).or(declared) {
        out.extend(
            tools::validate(schema, &args)
                .into_iter()
                .map(|e| OutputFinding::whole("tool", format!("schema-violation {e}"), action)),
        );
    }
    if let Some(rule) = rule {
        out.extend(
            tools::disallowed(&rule.allow, &args)
                .into_iter()
                .map(|e| OutputFinding::whole("tool", format!("disallowed-value {e}"), action)),
        );
    }
    let parts: Vec<Part<'_>> = tools::strings(&args)
        .into_iter()
        .map(|text| Part {
            text,
            source: Source::Assistant,
        })
        .collect();
    let decision = scope.guard.inspect(scope.policy, &parts, None);
    for f in decision.findings.iter().filter(|f| f.action != Action::Off) {
        out.push(OutputFinding {
            detector: f.detection.detector.as_str(),
            kind: f.detection.kind.to_string(),
            action,
            span: None,
            score: f.detection.score,
        });
    }
    out
}

/// Checks output that the request asked to be JSON (`response_format` `json_object` or
/// `json_schema`, whose schema is then validated too).
pub fn check_json(scope: &Scope<'_>, text: &str, schema: Option<&Value>) -> Vec<OutputFinding> {
    let action = scope.policy.profile().output.json;
    if action == Action::Off {
        return Vec::new();
    }
    match serde_json::from_str::<Value>(text) {
        Err(e) => vec![OutputFinding::whole(
            "json",
            format!("malformed-json at line {} column {}", e.line(), e.column()),
            action,
        )],
        Ok(v) => schema
            .map(|s| tools::validate(s, &v))
            .unwrap_or_default()
            .into_iter()
            .map(|e| OutputFinding::whole("json", format!("schema-violation {e}"), action))
            .collect(),
    }
}
