//! What a profile does with a model's output: `[guard.profiles.NAME.output]`.

use serde::Deserialize;

use crate::profile::Action;

/// What to do with a link, image or URL in the output that fails the exfiltration rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Links {
    /// Leave every link alone.
    Allow,
    /// Leave them, and record a finding.
    Flag,
    /// Remove suspicious images and URLs (a link keeps its text).
    StripUnlisted,
    /// Make suspicious URLs unclickable (`hxxps://evil[.]example/...`), images become text.
    DefangUnlisted,
    /// End the response with an error.
    BlockUnlisted,
}

/// A rule for one tool's call arguments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// The tool (function) name the rule applies to.
    pub name: String,
    /// A JSON Schema the arguments must satisfy (the subset `aigis` validates is listed in
    /// `docs/guard.md`); without one, the schema the request declared for the tool is used.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// JSON pointer -> the only values allowed there (`"/to" = ["ops@example.com"]`).
    #[serde(default)]
    pub allow: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
}

/// The output side of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPolicy {
    /// PII in the output.
    pub pii: Action,
    /// Secrets in the output (`pseudonymize` acts as `redact`: a secret is never restored).
    pub secrets: Action,
    /// Links, images and URLs that could carry data out.
    pub links: Links,
    /// Hosts links may point to (a name also allows its subdomains). Empty: hosts are not
    /// judged, only images and URLs whose query or path carries data are.
    pub allowed_hosts: Vec<String>,
    /// Inject a per-route canary into system prompts and block a response that repeats it.
    pub canary: bool,
    /// Verbatim or near-verbatim reproduction of the request's system prompt.
    pub leak: Action,
    /// Share of the system prompt's word 5-grams an output must repeat to count as a leak.
    pub leak_threshold: f32,
    /// What to do when a tool call's arguments break a rule or carry injection, PII or secrets.
    pub tools: Action,
    /// Per-tool rules.
    pub tool_rules: Vec<ToolRule>,
    /// When the request asks for JSON (`response_format`), what to do with output that is not.
    pub json: Action,
    /// Most bytes of streamed text held back while a match may still be forming.
    pub hold_back: usize,
    /// Release a stream's unfinished last word at once when no detector that acts could
    /// continue it into a match (a plain word, not the start of a key, URL or canary). Off: every
    /// unfinished word waits for the next space.
    pub early_release: bool,
}

/// Default for [`OutputPolicy::hold_back`]: long enough for every secret format aigis knows
/// except PEM blocks (held by their own rule), short enough to be invisible in a chat UI.
pub const DEFAULT_HOLD_BACK: usize = 512;

/// Most bytes `hold_back` may be set to.
pub const MAX_HOLD_BACK: usize = 64 * 1024;

impl OutputPolicy {
    /// The output side of a built-in profile.
    pub(crate) fn builtin(name: &str) -> Self {
        let (pii, secrets, links, leak, tools, json) = match name {
            "strict" => (
                Action::Redact,
                Action::Block,
                Links::StripUnlisted,
                Action::Block,
                Action::Block,
                Action::Block,
            ),
            "permissive" => (
                Action::Flag,
                Action::Flag,
                Links::Flag,
                Action::Flag,
                Action::Flag,
                Action::Flag,
            ),
            _ => (
                Action::Flag,
                Action::Redact,
                Links::StripUnlisted,
                Action::Block,
                Action::Flag,
                Action::Flag,
            ),
        };
        Self {
            pii,
            secrets,
            links,
            allowed_hosts: Vec::new(),
            canary: name != "permissive",
            leak,
            leak_threshold: 0.5,
            tools,
            tool_rules: Vec::new(),
            json,
            hold_back: DEFAULT_HOLD_BACK,
            early_release: name != "strict",
        }
    }
}

/// `output = { ... }` as written in config; everything optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// PII action.
    pub pii: Option<Action>,
    /// Secrets action.
    pub secrets: Option<Action>,
    /// Link policy.
    pub links: Option<Links>,
    /// Allowed link hosts (replaces the base's list).
    pub allowed_hosts: Option<Vec<String>>,
    /// Canary injection and detection.
    pub canary: Option<bool>,
    /// System-prompt leak action.
    pub leak: Option<Action>,
    /// System-prompt leak threshold.
    pub leak_threshold: Option<f32>,
    /// Tool-call action.
    pub tools: Option<Action>,
    /// Tool rules (added to the base's).
    #[serde(default)]
    pub tool_rules: Vec<ToolRule>,
    /// Structured-output action.
    pub json: Option<Action>,
    /// Hold-back in bytes.
    pub hold_back: Option<usize>,
    /// Early release of plain trailing words.
    pub early_release: Option<bool>,
}

impl OutputSpec {
    /// Applies the spec over `p`; problems go to `errors` as `profile NAME: ...`.
    pub(crate) fn apply(&self, p: &mut OutputPolicy, name: &str, errors: &mut Vec<String>) {
        let err =
            |errors: &mut Vec<String>, msg: String| errors.push(format!("profile {name}: {msg}"));
        for (key, action) in [
            ("leak", self.leak),
            ("tools", self.tools),
            ("json", self.json),
        ] {
            if action.is_some_and(Action::rewrites) {
                err(
                    errors,
                    format!("output.{key} can be block, flag or off; it cannot be redacted"),
                );
            }
        }
        if let Some(t) = self
            .leak_threshold
            .filter(|t| !(0.0..=1.0).contains(t) || *t == 0.0)
        {
            err(
                errors,
                format!("output.leak_threshold must be in (0, 1], not {t}"),
            );
        }
        if let Some(h) = self.hold_back.filter(|h| *h == 0 || *h > MAX_HOLD_BACK) {
            err(
                errors,
                format!("output.hold_back must be between 1 and {MAX_HOLD_BACK} bytes, not {h}"),
            );
        }
        for host in self.allowed_hosts.iter().flatten() {
            if host.is_empty() || host.contains(['/', ':', ' ', '*']) {
                err(
                    errors,
                    format!(
                        "output.allowed_hosts: {host:?} is not a host name (write `example.com`; it also allows subdomains)"
                    ),
                );
            }
        }
        for rule in &self.tool_rules {
            for pointer in rule.allow.keys() {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    err(
                        errors,
                        format!(
                            "output.tool_rules `{}`: allow key {pointer:?} is not a JSON pointer (write \"/{pointer}\")",
                            rule.name
                        ),
                    );
                }
            }
            if let Some(schema) = &rule.schema
                && let Err(e) = super::tools::check_schema(schema)
            {
                err(
                    errors,
                    format!("output.tool_rules `{}`: schema: {e}", rule.name),
                );
            }
        }
        p.pii = self.pii.unwrap_or(p.pii);
        p.secrets = self.secrets.unwrap_or(p.secrets);
        p.links = self.links.unwrap_or(p.links);
        if let Some(hosts) = &self.allowed_hosts {
            p.allowed_hosts = hosts
                .iter()
                .map(|h| h.trim_start_matches('.').to_ascii_lowercase())
                .collect();
        }
        p.canary = self.canary.unwrap_or(p.canary);
        p.leak = self.leak.unwrap_or(p.leak);
        p.leak_threshold = self.leak_threshold.unwrap_or(p.leak_threshold);
        p.tools = self.tools.unwrap_or(p.tools);
        p.tool_rules.extend(self.tool_rules.iter().cloned());
        p.json = self.json.unwrap_or(p.json);
        p.hold_back = self.hold_back.unwrap_or(p.hold_back);
        p.early_release = self.early_release.unwrap_or(p.early_release);
    }
}
