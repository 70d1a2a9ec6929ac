//! The canonical event encoding, written directly: every request's event is encoded once, on
//! the request's thread, so this is on the gateway's hot path. It produces exactly the bytes
//! `serde_json::to_writer` produces for [`Event`] (members in field order, absent optionals,
//! empty lists, zero `findings_dropped` and false flags omitted; `"`, `\` and control
//! characters escaped as serde_json escapes them), which a property test checks on random
//! events; parsing still goes through serde.

use crate::event::{EventKind, EventRef, GuardFinding};

/// Appends the canonical encoding of `e` to `out`.
pub(crate) fn encode(e: &EventRef<'_>, out: &mut Vec<u8>) {
    let mut w = Obj::open(out);
    w.num("v", u64::from(e.v));
    w.num("index", e.index);
    w.num("time_ms", e.time_ms);
    w.str(
        "kind",
        match e.kind {
            EventKind::AiCall => "ai_call",
            EventKind::Admin => "admin",
        },
    );
    w.str("request_id", e.request_id);
    w.opt_str("principal", e.principal);
    w.str("action", e.action);
    w.opt_str("model", e.model);
    w.opt_str("route", e.route);
    w.opt_str("upstream", e.upstream);
    if let Some((effect, policies)) = e.decision {
        w.key("decision");
        let mut o = Obj::open(w.out);
        o.str("effect", effect);
        o.str_list("policies", policies);
        o.close();
    }
    if !e.limits.is_empty() {
        w.key("limits");
        w.out.push(b'[');
        for (i, (name, outcome)) in e.limits.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            let mut o = Obj::open(w.out);
            o.str("name", name);
            o.str("outcome", outcome);
            o.close();
        }
        w.out.push(b']');
    }
    findings(&mut w, "request_findings", e.request_findings);
    findings(&mut w, "response_findings", e.response_findings);
    if e.findings_dropped != 0 {
        w.num("findings_dropped", u64::from(e.findings_dropped));
    }
    if let Some(t) = e.tokens {
        w.key("tokens");
        let mut o = Obj::open(w.out);
        o.num("prompt", t.prompt);
        o.num("completion", t.completion);
        o.close();
    }
    if e.stream {
        w.raw("stream", b"true");
    }
    if e.partial {
        w.raw("partial", b"true");
    }
    w.num("status", u64::from(e.status));
    if let Some(s) = e.upstream_status {
        w.num("upstream_status", u64::from(s));
    }
    if let Some(l) = e.latency_us {
        w.num("latency_us", l);
    }
    w.opt_str("tls_group", e.tls_group);
    w.opt_str("prompt_digest", e.prompt_digest);
    w.opt_str("response_digest", e.response_digest);
    w.opt_str("content", e.content);
    w.opt_str("target", e.target);
    w.opt_str("detail", e.detail);
    w.close();
}

fn findings(w: &mut Obj<'_>, name: &str, list: &[GuardFinding]) {
    if list.is_empty() {
        return;
    }
    w.key(name);
    w.out.push(b'[');
    for (i, f) in list.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        let mut o = Obj::open(w.out);
        o.str("kind", &f.kind);
        o.opt_str("action", f.action.as_deref());
        if let Some([a, b]) = f.span {
            o.key("span");
            o.out.push(b'[');
            number(o.out, a);
            o.out.push(b',');
            number(o.out, b);
            o.out.push(b']');
        }
        if let Some(s) = f.score_milli {
            o.num("score_milli", u64::from(s));
        }
        o.close();
    }
    w.out.push(b']');
}

/// An object being written: tracks whether a member needs a leading comma.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Member names are this module's own literals: nothing to escape.
        debug_assert!(!name.bytes().any(escaped));
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn num(&mut self, name: &str, n: u64) {
        self.key(name);
        number(self.out, n);
    }

    fn raw(&mut self, name: &str, json: &[u8]) {
        self.key(name);
        self.out.extend_from_slice(json);
    }

    fn str(&mut self, name: &str, s: &str) {
        self.key(name);
        string(self.out, s);
    }

    fn opt_str(&mut self, name: &str, s: Option<&str>) {
        if let Some(s) = s {
            self.str(name, s);
        }
    }

    fn str_list(&mut self, name: &str, list: &[String]) {
        if list.is_empty() {
            return;
        }
        self.key(name);
        self.out.push(b'[');
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            string(self.out, s);
        }
        self.out.push(b']');
    }
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
