//! Export of events for SIEMs: JSON lines (the canonical events), OCSF 1.3 and CEF.
//!
//! OCSF mapping:
//! - an AI call is **API Activity** (`class_uid` 6003, activity Create);
//! - a call refused with 401, on either listener (admin: `admin.authenticate`), is also an
//!   **Authentication** failure (3002, Logon);
//! - an admin action on keys is **Account Change** (3001: Create, Disable for revocation,
//!   Other otherwise); other admin actions (policy or config reload) are API Activity Update;
//! - every event with guard findings adds one **Detection Finding** (2004).

use serde_json::{Value, json};

use crate::event::{Event, EventKind, GuardFinding};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One canonical event per line.
    Jsonl,
    /// One OCSF 1.3 object per line.
    Ocsf,
    /// One CEF line per record.
    Cef,
}

const OCSF_VERSION: &str = "1.3.0";

fn metadata(e: &Event, origin: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {"name": "aigis", "vendor_name": "aigis", "version": env!("CARGO_PKG_VERSION")},
        "uid": format!("{origin}/{}", e.index),
        "correlation_uid": e.request_id,
        "log_name": origin,
    })
}

fn status(e: &Event) -> (u8, &'static str) {
    if e.status == 0 || (200..400).contains(&e.status) {
        (1, "Success")
    } else {
        (2, "Failure")
    }
}

fn actor(e: &Event) -> Value {
    json!({"user": {"uid": e.principal.as_deref().unwrap_or("anonymous")}})
}

fn record(class_uid: u32, activity_id: u32, category_uid: u32, e: &Event, origin: &str) -> Value {
    let (status_id, status_name) = status(e);
    let mut r = json!({
        "class_uid": class_uid,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": 1,
        "time": e.time_ms,
        "status_id": status_id,
        "status": status_name,
        "metadata": metadata(e, origin),
        "actor": actor(e),
    });
    if let Some(ip) = &e.client_ip {
        r["src_endpoint"] = json!({"ip": ip});
    }
    r
}

fn finding_types(list: &[GuardFinding]) -> Vec<&str> {
    let mut types: Vec<&str> = list.iter().map(|f| f.kind.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// The OCSF objects for one event.
pub fn ocsf(e: &Event, origin: &str) -> Vec<Value> {
    let mut out = Vec::new();
    match e.kind {
        EventKind::AiCall => {
            let mut r = record(6003, 1, 6, e, origin);
            r["api"] = json!({
                "operation": e.action,
                "request": {"uid": e.request_id},
                "response": {"code": e.status},
                "service": {"name": e.upstream.as_deref().unwrap_or("aigis")},
            });
            r["unmapped"] = json!({
                "model": e.model, "route": e.route, "decision": e.decision,
                "tokens": e.tokens, "latency_us": e.latency_us, "partial": e.partial,
            });
            out.push(r);
        }
        EventKind::Admin => {
            if let Some(op) = e.action.strip_prefix("keys.") {
                let activity = match op {
                    "create" | "rotate" => 1,
                    "revoke" => 5,
                    _ => 99,
                };
                let mut r = record(3001, activity, 3, e, origin);
                r["user"] = json!({"uid": e.target.as_deref().unwrap_or("unknown")});
                out.push(r);
            } else {
                let mut r = record(6003, 3, 6, e, origin);
                r["api"] = json!({"operation": e.action, "request": {"uid": e.request_id}});
                r["unmapped"] = json!({"target": e.target, "detail": e.detail});
                out.push(r);
            }
        }
    }
    if e.status == 401 {
        let mut a = record(3002, 1, 3, e, origin);
        // Who tried is unknown: the credential did not authenticate.
        a["user"] = json!({"uid": e.principal.as_deref().unwrap_or("unknown")});
        a["auth_protocol_id"] = json!(99);
        a["auth_protocol"] = json!("Other");
        a["service"] = json!({"name": if e.kind == EventKind::Admin { "aigis admin API" } else { "aigis gateway" }});
        out.push(a);
    }
    let all: Vec<GuardFinding> = e
        .request_findings
        .iter()
        .chain(&e.response_findings)
        .cloned()
        .collect();
    if !all.is_empty() {
        let mut f = record(2004, 1, 2, e, origin);
        f["severity_id"] = json!(3);
        f["finding_info"] = json!({
            "uid": format!("{}#{}", e.request_id, e.index),
            "title": format!("aigis guard: {}", finding_types(&all).join(", ")),
            "types": finding_types(&all),
        });
        f["unmapped"] = json!({"request_findings": e.request_findings, "response_findings": e.response_findings});
        out.push(f);
    }
    out
}

fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// One CEF line for an event.
pub fn cef(e: &Event, origin: &str) -> String {
    let severity = if !e.request_findings.is_empty() || !e.response_findings.is_empty() {
        6
    } else if status(e).0 == 2 {
        4
    } else {
        2
    };
    let kind = match e.kind {
        EventKind::AiCall => "ai_call",
        EventKind::Admin => "admin",
    };
    let mut ext = vec![
        ("rt", e.time_ms.to_string()),
        ("externalId", e.request_id.clone()),
        (
            "suser",
            e.principal.clone().unwrap_or_else(|| "anonymous".into()),
        ),
        ("act", e.action.clone()),
        ("outcome", status(e).1.to_owned()),
        ("cn1Label", "index".into()),
        ("cn1", e.index.to_string()),
        ("cs6Label", "origin".into()),
        ("cs6", origin.to_owned()),
    ];
    if e.status != 0 {
        ext.push(("cn2Label", "status".into()));
        ext.push(("cn2", e.status.to_string()));
    }
    // CEF's `src` holds IPv4 only; IPv6 goes in the custom IPv6 field.
    match e.client_ip.as_deref() {
        Some(ip) if ip.contains(':') => {
            ext.push(("c6a2", ip.to_owned()));
            ext.push(("c6a2Label", "source".into()));
        }
        Some(ip) => ext.push(("src", ip.to_owned())),
        None => {}
    }
    for (label, key, v) in [
        ("model", "cs1", &e.model),
        ("route", "cs2", &e.route),
        ("upstream", "cs3", &e.upstream),
        ("target", "cs4", &e.target),
    ] {
        if let Some(v) = v {
            ext.push((key, v.clone()));
            ext.push(match key {
                "cs1" => ("cs1Label", label.into()),
                "cs2" => ("cs2Label", label.into()),
                "cs3" => ("cs3Label", label.into()),
                _ => ("cs4Label", label.into()),
            });
        }
    }
    let findings: Vec<GuardFinding> = e
        .request_findings
        .iter()
        .chain(&e.response_findings)
        .cloned()
        .collect();
    if !findings.is_empty() {
        ext.push(("cs5Label", "findings".into()));
        ext.push(("cs5", finding_types(&findings).join(",")));
    }
    let ext: Vec<String> = ext
        .into_iter()
        .map(|(k, v)| format!("{k}={}", cef_value(&v)))
        .collect();
    format!(
        "CEF:0|aigis|aigis|{}|{kind}:{}|{}|{severity}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&e.action),
        cef_header(&format!("{kind} {}", e.action)),
        ext.join(" ")
    )
}

/// The export lines for one event in `format`.
pub fn lines(e: &Event, origin: &str, format: Format) -> Vec<String> {
    match format {
        Format::Jsonl => vec![String::from_utf8_lossy(&e.canonical()).into_owned()],
        Format::Ocsf => ocsf(e, origin).iter().map(Value::to_string).collect(),
        Format::Cef => vec![cef(e, origin)],
    }
}
