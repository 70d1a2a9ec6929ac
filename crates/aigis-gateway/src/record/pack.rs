//! The record of a complete response, packed into a byte buffer on the request's thread and
//! read back by the ledger's writer ([`super::Recorder::defer`]).

use std::time::Duration;

use aigis_ledger::event::GuardFinding;

use super::{Facts, Outcome};
use crate::admit::Usage;

/// The length written for an absent field.
const NONE: u32 = u32::MAX;

/// Appends one complete response's record to `buf`, for the ledger's writer to complete
/// ([`super::Recorder::defer`], [`unpack`]): the fixed fields, then each string of the facts, the
/// prompt and the response as a `u32` length (`u32::MAX` for none) and the bytes; a list is
/// its `u32` count and its items; a finding is its kind and action, then its span as two
/// `u64`s and its score as a `u32` (all ones for none). Copying them lets the request free its own allocations at
/// once, on their thread, while in cache: a record that held them (about a dozen strings and
/// buffers) until the writer took its batch cost the gateway more than all of the writer's
/// work (`docs/BENCHMARKS.md`, round 8).
pub(super) fn pack(
    buf: &mut Vec<u8>,
    facts: &Facts,
    usage: Option<Usage>,
    prompt: Option<&[u8]>,
    response: &[u8],
) {
    fn put(buf: &mut Vec<u8>, field: Option<&[u8]>) {
        // Every field is a string or body the gateway bounds far below 4 GiB.
        let len = field.map_or(NONE, |f| u32::try_from(f.len()).unwrap_or(NONE - 1));
        buf.extend_from_slice(&len.to_le_bytes());
        if let Some(f) = field {
            buf.extend_from_slice(&f[..len as usize]);
        }
    }
    fn put_list<'a>(buf: &mut Vec<u8>, count: usize, items: impl Iterator<Item = &'a str>) {
        buf.extend_from_slice(&u32::try_from(count).unwrap_or(0).to_le_bytes());
        for item in items.take(count) {
            put(buf, Some(item.as_bytes()));
        }
    }
    fn strings(v: &[String]) -> (usize, impl Iterator<Item = &str>) {
        (v.len(), v.iter().map(String::as_str))
    }
    fn put_findings(buf: &mut Vec<u8>, findings: &[GuardFinding]) {
        buf.extend_from_slice(&u32::try_from(findings.len()).unwrap_or(0).to_le_bytes());
        for f in findings {
            put(buf, Some(f.kind.as_bytes()));
            put(buf, f.action.as_deref().map(str::as_bytes));
            let [start, end] = f.span.unwrap_or([u64::MAX; 2]);
            buf.extend_from_slice(&start.to_le_bytes());
            buf.extend_from_slice(&end.to_le_bytes());
            buf.extend_from_slice(&f.score_milli.unwrap_or(NONE).to_le_bytes());
        }
    }
    buf.extend_from_slice(&facts.time_ms.to_le_bytes());
    let nanos = u64::try_from(facts.latency.as_nanos()).unwrap_or(u64::MAX);
    buf.extend_from_slice(&nanos.to_le_bytes());
    buf.extend_from_slice(&facts.status.to_le_bytes());
    buf.extend_from_slice(&facts.upstream_status.unwrap_or(0).to_le_bytes());
    buf.push(facts.allowed.map_or(0, |a| 1 + u8::from(a)));
    buf.push(u8::from(facts.stream));
    buf.push(u8::from(usage.is_some()));
    let usage = usage.unwrap_or_default();
    buf.extend_from_slice(&usage.prompt.to_le_bytes());
    buf.extend_from_slice(&usage.completion.to_le_bytes());
    put(buf, Some(facts.request_id.as_bytes()));
    put(buf, facts.principal.as_deref().map(str::as_bytes));
    put(buf, Some(facts.action.as_bytes()));
    put(buf, facts.model.as_deref().map(str::as_bytes));
    put(buf, facts.route.as_deref().map(str::as_bytes));
    put(buf, facts.upstream.as_deref().map(str::as_bytes));
    put(buf, facts.client_ip.as_deref().map(str::as_bytes));
    put(buf, facts.tls_group.as_deref().map(str::as_bytes));
    let (n, policies) = strings(&facts.policies);
    put_list(buf, n, policies);
    let limits = facts
        .limits
        .iter()
        .flat_map(|(name, outcome)| [name.as_str(), outcome]);
    put_list(buf, 2 * facts.limits.len(), limits);
    put_findings(buf, &facts.request_findings);
    put_findings(buf, &facts.response_findings);
    put(buf, prompt);
    put(buf, Some(response));
}

/// The bytes [`pack`] writes for a record.
pub(super) fn packed_len(facts: &Facts, prompt: Option<&[u8]>, response: &[u8]) -> usize {
    const FIXED: usize = 8 + 8 + 2 + 2 + 3 + 8 + 8;
    let field = |f: Option<&str>| 4 + f.map_or(0, str::len);
    let list = |v: &[String]| 4 + v.iter().map(|s| 4 + s.len()).sum::<usize>();
    let findings = |v: &[GuardFinding]| {
        4 + v
            .iter()
            .map(|f| 4 + f.kind.len() + field(f.action.as_deref()) + 16 + 4)
            .sum::<usize>()
    };
    FIXED
        + 4
        + facts.request_id.len()
        + field(facts.principal.as_deref())
        + field(Some(&facts.action))
        + field(facts.model.as_deref())
        + field(facts.route.as_deref())
        + field(facts.upstream.as_deref())
        + field(facts.client_ip.as_deref())
        + field(facts.tls_group.as_deref())
        + list(&facts.policies)
        + 4
        + facts
            .limits
            .iter()
            .map(|(name, outcome)| 8 + name.len() + outcome.len())
            .sum::<usize>()
        + findings(&facts.request_findings)
        + findings(&facts.response_findings)
        + 4
        + prompt.map_or(0, <[u8]>::len)
        + 4
        + response.len()
}

/// Reads [`pack`]ed records back, field by field, in the order they were written.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (n, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*n)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        if len == NONE {
            return None;
        }
        let (bytes, rest) = self.buf.split_at_checked(len as usize)?;
        self.buf = rest;
        Some(bytes)
    }

    fn text(&mut self) -> Option<&'a str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    fn list(&mut self) -> Vec<&'a str> {
        let n = self.u32().unwrap_or(0);
        (0..n).map_while(|_| self.text()).collect()
    }

    fn findings(&mut self) -> Vec<GuardFinding> {
        let n = self.u32().unwrap_or(0);
        (0..n)
            .map_while(|_| {
                let kind = self.text()?.to_owned();
                let action = self.text().map(str::to_owned);
                let [start, end] = [self.u64()?, self.u64()?];
                let score = self.u32()?;
                Some(GuardFinding {
                    kind,
                    action,
                    span: (start != u64::MAX).then_some([start, end]),
                    score_milli: (score != NONE).then_some(score),
                })
            })
            .collect()
    }

    /// The next record: its outcome (without digests, tokens or content), usage, prompt and
    /// response, passed to `each`; `None` at the end of the buffer.
    fn record(
        &mut self,
        each: &mut impl FnMut(Outcome<'_>, Option<Usage>, Option<&[u8]>, &[u8]),
    ) -> Option<()> {
        let time_ms = self.u64()?;
        let latency = Duration::from_nanos(self.u64()?);
        let status = u16::from_le_bytes(self.take()?);
        let upstream_status = Some(u16::from_le_bytes(self.take()?)).filter(|&s| s != 0);
        let [allowed, stream, has_usage] = self.take()?;
        let usage = Usage {
            prompt: self.u64()?,
            completion: self.u64()?,
        };
        let request_id = self.text().unwrap_or_default();
        let principal = self.text();
        let action = self.text().unwrap_or_default();
        let (model, route, upstream) = (self.text(), self.text(), self.text());
        let (client_ip, tls_group) = (self.text(), self.text());
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        let policies = owned(self.list());
        let limits: Vec<(&str, &str)> = self.list().chunks_exact(2).map(|p| (p[0], p[1])).collect();
        let request_findings = self.findings();
        let response_findings = self.findings();
        let prompt = self.bytes();
        let response = self.bytes().unwrap_or_default();
        let outcome = Outcome {
            time_ms,
            request_id,
            principal,
            action,
            model,
            route,
            upstream,
            allowed: (allowed > 0).then_some(allowed == 2),
            policies: &policies,
            limits: &limits,
            request_findings: &request_findings,
            response_findings: &response_findings,
            stream: stream == 1,
            status,
            upstream_status,
            latency,
            client_ip,
            tls_group,
            ..Outcome::default()
        };
        each(outcome, (has_usage == 1).then_some(usage), prompt, response);
        Some(())
    }
}

/// Calls `each` with every record [`pack`]ed into `buf`, in order.
pub(super) fn unpack(
    buf: &[u8],
    mut each: impl FnMut(Outcome<'_>, Option<Usage>, Option<&[u8]>, &[u8]),
) {
    let mut fields = Fields { buf };
    while !fields.buf.is_empty() && fields.record(&mut each).is_some() {}
}
