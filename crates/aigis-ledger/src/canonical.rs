//! The canonical event encoding, written directly: every request's event is encoded once, on
//! the request's thread, so this is on the gateway's hot path. It produces exactly the bytes
//! `serde_json::to_writer` produces for [`Event`] (members in field order, absent optionals,
//! empty lists, zero `findings_dropped` and false flags omitted; `"`, `\` and control
//! characters escaped as serde_json escapes them), which a property test checks on random
//! events; parsing still goes through serde.

use crate::event::{EventKind, EventRef, GuardFinding};

/// Appends `,"NAME":`, the start of every member but an object's first, as one constant (a
/// few stores once inlined, where a key written piece by piece cost a call and three pushes).
macro_rules! key {
    ($out:ident, $name:literal) => {
        $out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// Appends a member that is not an object's first: `num`ber, `str`ing, or `opt`ional string
/// (written only when present).
macro_rules! member {
    ($out:ident, $name:literal, num $n:expr) => {{
        key!($out, $name);
        number($out, $n);
    }};
    ($out:ident, $name:literal, str $s:expr) => {{
        key!($out, $name);
        string($out, $s);
    }};
    ($out:ident, $name:literal, opt $s:expr) => {
        if let Some(s) = $s {
            member!($out, $name, str s);
        }
    };
}

/// Appends the canonical encoding of `e` to `out`.
pub(crate) fn encode(e: &EventRef<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"v\":");
    number(out, u64::from(e.v));
    member!(out, "index", num e.index);
    member!(out, "time_ms", num e.time_ms);
    let kind = match e.kind {
        EventKind::AiCall => "ai_call",
        EventKind::Admin => "admin",
    };
    member!(out, "kind", str kind);
    member!(out, "request_id", str e.request_id);
    member!(out, "principal", opt e.principal);
    member!(out, "action", str e.action);
    member!(out, "model", opt e.model);
    member!(out, "route", opt e.route);
    member!(out, "upstream", opt e.upstream);
    if let Some((effect, policies)) = e.decision {
        key!(out, "decision");
        out.extend_from_slice(b"{\"effect\":");
        string(out, effect);
        if !policies.is_empty() {
            key!(out, "policies");
            list(out, policies, |out, s| string(out, s));
        }
        out.push(b'}');
    }
    if !e.limits.is_empty() {
        key!(out, "limits");
        list(out, e.limits, |out, (name, outcome)| {
            out.extend_from_slice(b"{\"name\":");
            string(out, name);
            member!(out, "outcome", str outcome);
            out.push(b'}');
        });
    }
    if !e.request_findings.is_empty() {
        key!(out, "request_findings");
        list(out, e.request_findings, finding);
    }
    if !e.response_findings.is_empty() {
        key!(out, "response_findings");
        list(out, e.response_findings, finding);
    }
    if e.findings_dropped != 0 {
        member!(out, "findings_dropped", num u64::from(e.findings_dropped));
    }
    if let Some(t) = e.tokens {
        key!(out, "tokens");
        out.extend_from_slice(b"{\"prompt\":");
        number(out, t.prompt);
        member!(out, "completion", num t.completion);
        out.push(b'}');
    }
    if e.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    if e.partial {
        out.extend_from_slice(b",\"partial\":true");
    }
    member!(out, "status", num u64::from(e.status));
    if let Some(s) = e.upstream_status {
        member!(out, "upstream_status", num u64::from(s));
    }
    if let Some(l) = e.latency_us {
        member!(out, "latency_us", num l);
    }
    member!(out, "client_ip", opt e.client_ip);
    member!(out, "tls_group", opt e.tls_group);
    member!(out, "prompt_digest", opt e.prompt_digest);
    member!(out, "response_digest", opt e.response_digest);
    member!(out, "content", opt e.content);
    member!(out, "target", opt e.target);
    member!(out, "detail", opt e.detail);
    out.push(b'}');
}

/// Appends `[` + each item as `each` writes it, comma-separated, + `]`.
fn list<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

fn finding(out: &mut Vec<u8>, f: &GuardFinding) {
    out.extend_from_slice(b"{\"kind\":");
    string(out, &f.kind);
    member!(out, "action", opt f.action.as_deref());
    if let Some([a, b]) = f.span {
        key!(out, "span");
        out.push(b'[');
        number(out, a);
        out.push(b',');
        number(out, b);
        out.push(b']');
    }
    if let Some(s) = f.score_milli {
        member!(out, "score_milli", num u64::from(s));
    }
    out.push(b'}');
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Whether JSON needs `b` escaped.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// A JSON string as serde_json writes it: `"` and `\` backslash-escaped, `\b \f \n \r \t` by
/// name, other bytes below 0x20 as `\u00XX`, everything else (UTF-8 included) verbatim.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings (ids, names, digests) need no escape: test 16 bytes at a time without a
    // branch per byte (the compiler vectorises the fold), then copy them whole.
    if !bytes
        .chunks(16)
        .any(|c| c.iter().fold(false, |acc, &b| acc | escaped(b)))
    {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let named = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(named);
        if named == b'u' {
            out.extend_from_slice(b"00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::event::{Decision, Event, EventKind, GuardFinding, LimitOutcome, TokenUsage};

    /// Strings with what needs escaping: quotes, backslashes, every control byte, DEL, and
    /// multi-byte UTF-8.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                (0u8..0x20).prop_map(char::from),
                Just('\u{7f}'),
                Just('é'),
                Just('💥'),
                Just('\u{2028}'),
                proptest::char::range('a', 'z'),
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn finding() -> impl Strategy<Value = GuardFinding> {
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(any::<[u64; 2]>()),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(|(kind, action, span, score_milli)| GuardFinding {
                kind,
                action,
                span,
                score_milli,
            })
    }

    fn event() -> impl Strategy<Value = Event> {
        let ids = (any::<u64>(), any::<u64>(), any::<bool>(), text(), text());
        let opts = proptest::collection::vec(proptest::option::of(text()), 11);
        let lists = (
            proptest::option::of((text(), proptest::collection::vec(text(), 0..3))),
            proptest::collection::vec((text(), text()), 0..3),
            proptest::collection::vec(finding(), 0..3),
            proptest::collection::vec(finding(), 0..3),
        );
        let nums = (
            any::<u32>(),
            proptest::option::of(any::<(u64, u64)>()),
            any::<(bool, bool, u16)>(),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u64>()),
        );
        (ids, opts, lists, nums).prop_map(|(ids, o, lists, nums)| {
            let (index, time_ms, admin, request_id, action) = ids;
            let kind = if admin {
                EventKind::Admin
            } else {
                EventKind::AiCall
            };
            let mut e = Event::new(kind, &request_id, &action, time_ms);
            e.index = index;
            [
                e.principal,
                e.model,
                e.route,
                e.upstream,
                e.client_ip,
                e.tls_group,
                e.prompt_digest,
                e.response_digest,
                e.content,
                e.target,
                e.detail,
            ] = [
                o[0].clone(),
                o[1].clone(),
                o[2].clone(),
                o[3].clone(),
                o[4].clone(),
                o[5].clone(),
                o[6].clone(),
                o[7].clone(),
                o[8].clone(),
                o[9].clone(),
                o[10].clone(),
            ];
            let (decision, limits, request_findings, response_findings) = lists;
            e.decision = decision.map(|(effect, policies)| Decision { effect, policies });
            e.limits = limits
                .into_iter()
                .map(|(name, outcome)| LimitOutcome { name, outcome })
                .collect();
            e.request_findings = request_findings;
            e.response_findings = response_findings;
            let (dropped, tokens, (stream, partial, status), upstream_status, latency_us) = nums;
            e.findings_dropped = dropped;
            e.tokens = tokens.map(|(prompt, completion)| TokenUsage { prompt, completion });
            (e.stream, e.partial, e.status) = (stream, partial, status);
            e.upstream_status = upstream_status;
            e.latency_us = latency_us;
            e
        })
    }

    proptest! {
        #[test]
        fn the_direct_encoding_is_serde_jsons(e in event()) {
            let mut ours = Vec::new();
            e.canonical_into(&mut ours);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&e).unwrap());
        }
    }
}
