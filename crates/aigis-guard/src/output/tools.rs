//! Tool-call arguments: JSON Schema (a bounded subset), allowed values, and the input
//! detectors (injection, PII, secrets) over every string in the arguments.
//!
//! Validated keywords: `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `items`, `minItems`, `maxItems`, `minLength`, `maxLength`,
//! `minimum`, `maximum`, `pattern`. Others are ignored (and listed in `docs/guard.md`).

use serde_json::Value;

/// Deepest schema or argument nesting followed.
const MAX_DEPTH: usize = 32;
/// Most schema violations reported for one call.
const MAX_ERRORS: usize = 8;
/// Largest regex `pattern` compiled from a schema.
const MAX_PATTERN: usize = 1024;

/// Checks that `schema` is something the validator can use (an object, patterns compile).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    fn walk(s: &Value, at: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{at}: nested deeper than {MAX_DEPTH}"));
        }
        let Some(obj) = s.as_object() else {
            return match s {
                Value::Bool(_) => Ok(()),
                _ => Err(format!("{at}: a schema must be an object or a boolean")),
            };
        };
        if let Some(p) = obj.get("pattern") {
            let p = p
                .as_str()
                .ok_or(format!("{at}/pattern: must be a string"))?;
            if p.len() > MAX_PATTERN {
                return Err(format!("{at}/pattern: longer than {MAX_PATTERN} bytes"));
            }
            regex::Regex::new(p).map_err(|e| format!("{at}/pattern: {e}"))?;
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                walk(v, &format!("{at}/properties/{k}"), depth + 1)?;
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(v) = obj.get(key) {
                walk(v, &format!("{at}/{key}"), depth + 1)?;
            }
        }
        Ok(())
    }
    walk(schema, "", 0)
}

/// Schema violations of `value`, each `pointer: what is wrong`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, value, "", 0, &mut errors);
    errors
}

fn walk(schema: &Value, value: &Value, at: &str, depth: usize, errors: &mut Vec<String>) {
    if errors.len() >= MAX_ERRORS || depth > MAX_DEPTH {
        return;
    }
    let here = if at.is_empty() { "/" } else { at };
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{here}: no value is allowed here"));
        }
        return;
    };
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(n) => vec![n.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|n| is_type(value, n)) {
            errors.push(format!(
                "{here}: expected {}, found {}",
                names.join(" or "),
                type_of(value)
            ));
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!(
            "{here}: {} is not one of the allowed values",
            short(value)
        ));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        errors.push(format!("{here}: must be {}", short(c)));
    }
    match value {
        Value::Object(map) => object(s, map, at, depth, errors),
        Value::Array(items) => {
            let n = items.len() as u64;
            bound(
                s.get("minItems"),
                s.get("maxItems"),
                n,
                "items",
                here,
                errors,
            );
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(item, v, &format!("{at}/{i}"), depth + 1, errors);
                }
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            bound(
                s.get("minLength"),
                s.get("maxLength"),
                n,
                "characters",
                here,
                errors,
            );
            if let Some(p) = s
                .get("pattern")
                .and_then(Value::as_str)
                .filter(|p| p.len() <= MAX_PATTERN)
                && regex::Regex::new(p).is_ok_and(|re| !re.is_match(text))
            {
                errors.push(format!("{here}: does not match the pattern {p:?}"));
            }
        }
        Value::Number(num) => {
            let x = num.as_f64().unwrap_or(f64::NAN);
            if s.get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x < m)
            {
                errors.push(format!("{here}: {num} is below the minimum"));
            }
            if s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x > m)
            {
                errors.push(format!("{here}: {num} is above the maximum"));
            }
        }
        _ => {}
    }
}

fn object(
    s: &serde_json::Map<String, Value>,
    map: &serde_json::Map<String, Value>,
    at: &str,
    depth: usize,
    errors: &mut Vec<String>,
) {
    let here = if at.is_empty() { "/" } else { at };
    for key in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(k) = key.as_str().filter(|k| !map.contains_key(*k)) {
            errors.push(format!("{here}: missing required property `{k}`"));
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, v) in map {
        let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (None, Some(Value::Bool(false))) => {
                errors.push(format!("{child}: property `{k}` is not allowed"));
            }
            (Some(sub), _) | (None, Some(sub)) => walk(sub, v, &child, depth + 1, errors),
            (None, None) => {}
        }
    }
}

fn bound(
    min: Option<&Value>,
    max: Option<&Value>,
    n: u64,
    what: &str,
    at: &str,
    errors: &mut Vec<String>,
) {
    if let Some(m) = min.and_then(Value::as_u64).filter(|m| n < *m) {
        errors.push(format!("{at}: {n} {what}, at least {m} required"));
    }
    if let Some(m) = max.and_then(Value::as_u64).filter(|m| n > *m) {
        errors.push(format!("{at}: {n} {what}, at most {m} allowed"));
    }
}

fn is_type(v: &Value, name: &str) -> bool {
    match name {
        "integer" => {
            v.as_i64().is_some()
                || v.as_u64().is_some()
                || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "number" => v.is_number(),
        other => type_of(v) == other,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value for an error message: never long, never the whole of a string argument.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("a string of {} characters", s.chars().count()),
        Value::Array(_) | Value::Object(_) => type_of(v).to_owned(),
        other => other.to_string(),
    }
}

/// Values at the rule's pointers that are not among the allowed ones.
pub fn disallowed(
    allow: &std::collections::BTreeMap<String, Vec<Value>>,
    args: &Value,
) -> Vec<String> {
    allow
        .iter()
        .filter_map(|(pointer, values)| {
            let v = args.pointer(pointer)?;
            (!values.contains(v))
                .then(|| format!("{pointer}: {} is not an allowed value", short(v)))
        })
        .collect()
}

/// Every string in `value` (keys are not), depth-bounded.
pub fn strings(value: &Value) -> Vec<&str> {
    fn go<'a>(v: &'a Value, depth: usize, out: &mut Vec<&'a str>) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            Value::String(s) => out.push(s),
            Value::Array(a) => a.iter().for_each(|x| go(x, depth + 1, out)),
            Value::Object(m) => m.values().for_each(|x| go(x, depth + 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(value, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_the_subset() {
        let schema = json!({
            "type": "object",
            "required": ["to", "amount"],
            "additionalProperties": false,
            "properties": {
                "to": {"type": "string", "pattern": "^[a-z]+@example\\.com$"},
                "amount": {"type": "integer", "minimum": 1, "maximum": 100},
                "tags": {"type": "array", "maxItems": 2, "items": {"enum": ["a", "b"]}}
            }
        });
        check_schema(&schema).unwrap();
        assert!(validate(&schema, &json!({"to": "ann@example.com", "amount": 5})).is_empty());
        let errors = validate(
            &schema,
            &json!({"to": "x@evil.test", "amount": 500, "tags": ["a", "c", "b"], "cc": 1}),
        );
        let all = errors.join("\n");
        for want in [
            "/to: does not match",
            "/amount: 500 is above",
            "/tags: 3 items",
            "/tags/1: a string of 1",
            "/cc: property `cc` is not allowed",
        ] {
            assert!(all.contains(want), "{want} not in {all}");
        }
        assert_eq!(
            validate(&schema, &json!([1])),
            ["/: expected object, found array"]
        );
        assert!(check_schema(&json!({"pattern": "("})).is_err());
    }

    #[test]
    fn allowed_values_and_strings() {
        let allow = [("/to".to_owned(), vec![json!("ops@example.com")])]
            .into_iter()
            .collect();
        assert!(disallowed(&allow, &json!({"to": "ops@example.com"})).is_empty());
        assert_eq!(disallowed(&allow, &json!({"to": "x@y.z"})).len(), 1);
        assert_eq!(
            strings(&json!({"a": ["x", {"b": "y"}], "n": 1})),
            ["x", "y"]
        );
    }
}
