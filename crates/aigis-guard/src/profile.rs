//! Guard profiles: what each detector does when it fires, and at what threshold.
//!
//! Three built-in profiles, `strict`, `balanced` (the default) and `permissive`; a user profile
//! names one of them (or another user profile) in `extends` and overrides only what it sets.
//!
//! | | strict | balanced | permissive |
//! |---|---|---|---|
//! | injection (direct: user, system, assistant text) | block at 0.30 | block at 0.50 | flag at 0.80 |
//! | injection (indirect: tool results, documents) | block at 0.40 | block at 0.70 | flag at 0.90 |
//! | payloads past the decoding limits, direct (injection action) | block | block | flag |
//! | payloads past the decoding limits, indirect (`decode_limit`) | block | flag | flag |
//! | invisible and bidi characters | block | redact (strip) | flag |
//! | PII | redact, every entity, score ≥ 0.4 | flag, every entity, score ≥ 0.5 | flag, score ≥ 0.8 |
//! | secrets | block | redact | flag |
//! | banned substrings and patterns, topics | block | block | flag |

use std::collections::BTreeMap;

use serde::Deserialize;

/// What to do when a detector fires.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Do not run the detector.
    Off,
    /// Allow, and record the finding.
    Flag,
    /// Replace the value with a typed placeholder such as `[EMAIL_1]`.
    Redact,
    /// Replace the value with a placeholder that is restored in the response for the same
    /// caller (see [`crate::Vault`]).
    Pseudonymize,
    /// Refuse the request.
    #[default]
    Block,
}

impl Action {
    /// The spelling used in config and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Flag => "flag",
            Self::Redact => "redact",
            Self::Pseudonymize => "pseudonymize",
            Self::Block => "block",
        }
    }

    /// True for the actions that rewrite the text.
    pub fn rewrites(self) -> bool {
        matches!(self, Self::Redact | Self::Pseudonymize)
    }
}

/// Prompt-injection policy.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectionPolicy {
    /// `block`, `flag` or `off` (injection cannot be redacted).
    pub action: Action,
    /// Score at or above which text from the user, system or assistant is an injection.
    pub threshold: f32,
    /// Score at or above which tool results and retrieved documents are an injection.
    pub indirect_threshold: f32,
    /// What a tool result or retrieved document with payloads past the decoding limits gets
    /// (`block`, `flag` or `off`): such content often holds many encoded links or a large
    /// base64 image, so `balanced` flags it there; text from the user, system or assistant
    /// gets the injection `action`, as decoys ahead of an encoded order are an attack there.
    pub decode_limit: Action,
}

/// PII policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiPolicy {
    /// Action for every entity type in `entities`.
    pub action: Action,
    /// Entity types acted on (`EMAIL_ADDRESS`, `CREDIT_CARD`, ...); empty means all.
    pub entities: Vec<String>,
    /// Minimum confidence for a detection to count.
    pub min_score: f32,
}

/// Custom banned substrings (matched on normalised text, so obfuscation does not hide them) and
/// regular expressions (matched on the original text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BannedPolicy {
    /// Action when one matches.
    pub action: Action,
    /// Case-insensitive substrings.
    pub substrings: Vec<String>,
    /// Regular expressions (`regex` crate syntax, linear time).
    pub patterns: Vec<String>,
}

/// Topic word-lists: a topic fires when any of its words or phrases appears as whole words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicsPolicy {
    /// Action when a topic fires.
    pub action: Action,
    /// Topic name -> words and phrases.
    pub lists: BTreeMap<String, Vec<String>>,
}

/// A complete profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Prompt injection and jailbreaks.
    pub injection: InjectionPolicy,
    /// Invisible and bidi-control characters (`redact` strips them).
    pub invisible: Action,
    /// Personal data.
    pub pii: PiiPolicy,
    /// Credentials (`redact` and `pseudonymize` both redact: a secret is never restored).
    pub secrets: Action,
    /// Banned substrings and patterns.
    pub banned: BannedPolicy,
    /// Topic word-lists.
    pub topics: TopicsPolicy,
    /// What the model's output may carry out.
    pub output: crate::output::OutputPolicy,
}

/// Names of the built-in profiles.
pub const BUILTIN: [&str; 3] = ["strict", "balanced", "permissive"];

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Self> {
        let (inj, threshold, indirect, invisible, pii, pii_score, secrets, custom) = match name {
            "strict" => (
                (Action::Block, Action::Block),
                0.30,
                0.40,
                Action::Block,
                Action::Redact,
                0.4,
                Action::Block,
                Action::Block,
            ),
            "balanced" => (
                (Action::Block, Action::Flag),
                0.50,
                0.70,
                Action::Redact,
                Action::Flag,
                0.5,
                Action::Redact,
                Action::Block,
            ),
            "permissive" => (
                (Action::Flag, Action::Flag),
                0.80,
                0.90,
                Action::Flag,
                Action::Flag,
                0.8,
                Action::Flag,
                Action::Flag,
            ),
            _ => return None,
        };
        Some(Self {
            injection: InjectionPolicy {
                action: inj.0,
                threshold,
                indirect_threshold: indirect,
                decode_limit: inj.1,
            },
            invisible,
            pii: PiiPolicy {
                action: pii,
                entities: Vec::new(),
                min_score: pii_score,
            },
            secrets,
            banned: BannedPolicy {
                action: custom,
                ..BannedPolicy::default()
            },
            topics: TopicsPolicy {
                action: custom,
                ..TopicsPolicy::default()
            },
            output: crate::output::OutputPolicy::builtin(name),
        })
    }
}

/// A user profile as written in config: everything optional, `extends` names its base.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// The profile this one starts from (default `balanced`).
    pub extends: Option<String>,
    /// Injection overrides.
    pub injection: Option<InjectionSpec>,
    /// Invisible-character action.
    pub invisible: Option<ActionSpec>,
    /// PII overrides.
    pub pii: Option<PiiSpec>,
    /// Secrets action.
    pub secrets: Option<ActionSpec>,
    /// Banned substrings and patterns (added to the base's).
    pub banned: Option<BannedSpec>,
    /// Topic lists (added to the base's).
    pub topics: Option<TopicsSpec>,
    /// The output side.
    pub output: Option<crate::output::OutputSpec>,
}

/// `{ action = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// The action.
    pub action: Action,
}

/// Injection overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionSpec {
    /// Action.
    pub action: Option<Action>,
    /// Direct threshold.
    pub threshold: Option<f32>,
    /// Indirect threshold.
    pub indirect_threshold: Option<f32>,
    /// Action on payloads past the decoding limits in tool results and documents.
    pub decode_limit: Option<Action>,
}

/// PII overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiSpec {
    /// Action.
    pub action: Option<Action>,
    /// Entity types (short aliases such as `EMAIL`, `PHONE`, `IBAN` accepted; an unknown name is
    /// an error).
    pub entities: Option<Vec<String>>,
    /// Minimum confidence.
    pub min_score: Option<f32>,
}

/// Banned additions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BannedSpec {
    /// Action.
    pub action: Option<Action>,
    /// Substrings.
    #[serde(default)]
    pub substrings: Vec<String>,
    /// Regular expressions.
    #[serde(default)]
    pub patterns: Vec<String>,
}

/// Topic additions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsSpec {
    /// Action.
    pub action: Option<Action>,
    /// Topic name -> words.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
}

/// The canonical entity name for an alias (`EMAIL` -> `EMAIL_ADDRESS`).
pub fn canonical_entity(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "EMAIL" => "EMAIL_ADDRESS".into(),
        "PHONE" => "PHONE_NUMBER".into(),
        "IBAN" => "IBAN_CODE".into(),
        "IP" => "IP_ADDRESS".into(),
        "SSN" => "US_SSN".into(),
        _ => upper,
    }
}

/// Aliases [`canonical_entity`] accepts besides the entity names.
const ENTITY_ALIASES: [&str; 5] = ["EMAIL", "PHONE", "IBAN", "IP", "SSN"];

/// What is wrong with `given` (canonically `canonical`) as a PII entity name, naming the valid
/// ones; `None` for an entity the detector reports. An unknown name would match nothing and
/// silently turn detection off for the entity meant.
fn unknown_entity(given: &str, canonical: &str) -> Option<String> {
    let names: Vec<&str> = crate::pii::Pii::entities().iter().map(|e| e.name).collect();
    if names.contains(&canonical) {
        return None;
    }
    let upper = given.to_ascii_uppercase();
    let close: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !upper.is_empty() && (n.contains(upper.as_str()) || upper.contains(n)))
        .collect();
    let hint = match close.as_slice() {
        [one] => format!(" (did you mean `{one}`?)"),
        _ => String::new(),
    };
    Some(format!(
        "unknown entity `{given}`{hint}; valid entities are {} (aliases {})",
        names.join(", "),
        ENTITY_ALIASES.join(", ")
    ))
}

/// The short placeholder name for an entity type (`EMAIL_ADDRESS` -> `EMAIL`).
pub fn placeholder_name(kind: &str) -> &str {
    match kind {
        "EMAIL_ADDRESS" => "EMAIL",
        "PHONE_NUMBER" => "PHONE",
        "IBAN_CODE" => "IBAN",
        "IP_ADDRESS" => "IP",
        other => other,
    }
}

/// Resolves user profiles over the built-ins, following `extends` chains. Every problem is
/// reported as `profile NAME: what is wrong`.
pub fn resolve(
    specs: &BTreeMap<String, ProfileSpec>,
) -> Result<BTreeMap<String, Profile>, Vec<String>> {
    let mut out: BTreeMap<String, Profile> = BUILTIN
        .iter()
        .filter_map(|n| Some(((*n).to_owned(), Profile::builtin(n)?)))
        .collect();
    let mut errors = Vec::new();
    for name in specs.keys() {
        let mut chain = vec![name.as_str()];
        let mut base = specs[name].extends.as_deref().unwrap_or("balanced");
        while let Some(spec) = specs.get(base).filter(|_| !BUILTIN.contains(&base)) {
            if chain.contains(&base) {
                errors.push(format!(
                    "profile {name}: `extends` forms a cycle ({} -> {base})",
                    chain.join(" -> ")
                ));
                break;
            }
            chain.push(base);
            base = spec.extends.as_deref().unwrap_or("balanced");
        }
        let Some(mut profile) = Profile::builtin(base) else {
            if !errors
                .iter()
                .any(|e| e.starts_with(&format!("profile {name}:")))
            {
                errors.push(format!(
                    "profile {name}: extends unknown profile `{base}`; built-in profiles are {}",
                    BUILTIN.join(", ")
                ));
            }
            continue;
        };
        for step in chain.iter().rev() {
            apply(&mut profile, &specs[*step], step, &mut errors);
        }
        out.insert(name.clone(), profile);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn apply(p: &mut Profile, spec: &ProfileSpec, name: &str, errors: &mut Vec<String>) {
    let check_score = |errors: &mut Vec<String>, what: &str, v: Option<f32>| {
        if let Some(v) = v.filter(|v| !(0.0..=1.0).contains(v)) {
            errors.push(format!(
                "profile {name}: {what} must be between 0 and 1, not {v}"
            ));
        }
    };
    if let Some(i) = &spec.injection {
        check_score(errors, "injection.threshold", i.threshold);
        check_score(errors, "injection.indirect_threshold", i.indirect_threshold);
        if let Some(a) = i.action {
            if a.rewrites() {
                errors.push(format!("profile {name}: injection.action can be block, flag or off; an injection cannot be redacted"));
            }
            p.injection.action = a;
        }
        p.injection.threshold = i.threshold.unwrap_or(p.injection.threshold);
        p.injection.indirect_threshold = i
            .indirect_threshold
            .unwrap_or(p.injection.indirect_threshold);
        if let Some(a) = i.decode_limit {
            if a.rewrites() {
                errors.push(format!(
                    "profile {name}: injection.decode_limit can be block, flag or off"
                ));
            }
            p.injection.decode_limit = a;
        }
    }
    if let Some(a) = &spec.invisible {
        p.invisible = a.action;
    }
    if let Some(pii) = &spec.pii {
        check_score(errors, "pii.min_score", pii.min_score);
        p.pii.action = pii.action.unwrap_or(p.pii.action);
        p.pii.min_score = pii.min_score.unwrap_or(p.pii.min_score);
        if let Some(entities) = &pii.entities {
            p.pii.entities = entities.iter().map(|e| canonical_entity(e)).collect();
            for (given, canonical) in entities.iter().zip(&p.pii.entities) {
                if let Some(problem) = unknown_entity(given, canonical) {
                    errors.push(format!("profile {name}: pii.entities: {problem}"));
                }
            }
        }
    }
    if let Some(a) = &spec.secrets {
        p.secrets = a.action;
    }
    if let Some(b) = &spec.banned {
        p.banned.action = b.action.unwrap_or(p.banned.action);
        p.banned.substrings.extend(b.substrings.iter().cloned());
        for pattern in &b.patterns {
            if let Err(e) = regex::Regex::new(pattern) {
                errors.push(format!(
                    "profile {name}: banned pattern {pattern:?} is not a valid regex: {e}"
                ));
            }
        }
        p.banned.patterns.extend(b.patterns.iter().cloned());
    }
    if let Some(t) = &spec.topics {
        p.topics.action = t.action.unwrap_or(p.topics.action);
        p.topics.lists.extend(t.lists.clone());
    }
    if let Some(o) = &spec.output {
        o.apply(&mut p.output, name, errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(toml: &str) -> BTreeMap<String, ProfileSpec> {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn user_profiles_extend_builtins_and_each_other() {
        let resolved = resolve(&specs(
            r#"
            [base]
            extends = "strict"
            pii = { action = "pseudonymize", entities = ["EMAIL", "PHONE"] }
            [child]
            extends = "base"
            injection = { threshold = 0.6 }
            banned = { substrings = ["project x"] }
            "#,
        ))
        .unwrap();
        let child = &resolved["child"];
        assert_eq!(child.pii.action, Action::Pseudonymize);
        assert_eq!(child.pii.entities, ["EMAIL_ADDRESS", "PHONE_NUMBER"]);
        assert!((child.injection.threshold - 0.6).abs() < f32::EPSILON);
        assert_eq!(child.secrets, Action::Block);
        assert_eq!(child.banned.substrings, ["project x"]);
        assert_eq!(resolved["balanced"], Profile::builtin("balanced").unwrap());
    }

    #[test]
    fn unknown_pii_entities_are_rejected_with_the_valid_names() {
        let errors = resolve(&specs(
            r#"
            [support]
            pii = { action = "redact", entities = ["EMAIL", "CARD", "credit_card", "us_ssn", "PASSPORT_NO"] }
            "#,
        ))
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "profile support: pii.entities: unknown entity `CARD` (did you mean `CREDIT_CARD`?); \
                 valid entities are CREDIT_CARD, CRYPTO, EMAIL_ADDRESS,"
            ),
            "{}",
            errors[0]
        );
        assert!(errors[0].contains("(aliases EMAIL, PHONE, IBAN, IP, SSN)"));
        assert!(
            errors[1].contains("unknown entity `PASSPORT_NO`;"),
            "{}",
            errors[1]
        );
        // Every name the detector reports, and every alias, is accepted in any case.
        let mut all: Vec<String> = crate::pii::Pii::entities()
            .iter()
            .map(|e| e.name.to_ascii_lowercase())
            .collect();
        all.extend(ENTITY_ALIASES.iter().map(|a| (*a).to_owned()));
        let toml = format!("[all]\npii = {{ entities = {all:?} }}");
        assert!(resolve(&specs(&toml)).is_ok());
    }

    #[test]
    fn reports_every_problem() {
        let errors = resolve(&specs(
            r#"
            [a]
            extends = "b"
            [b]
            extends = "a"
            [c]
            extends = "nope"
            injection = { action = "redact", threshold = 2.0 }
            banned = { patterns = ["("] }
            "#,
        ))
        .unwrap_err();
        let all = errors.join("\n");
        assert!(all.contains("profile a: `extends` forms a cycle"), "{all}");
        assert!(
            all.contains("profile c: extends unknown profile `nope`"),
            "{all}"
        );
        let errors = resolve(&specs("[c]\ninjection = { action = \"redact\", threshold = 2.0 }\nbanned = { patterns = [\"(\"] }")).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
