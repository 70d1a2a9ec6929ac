//! The response side of the `record` stage: the keyed digest of the response body as the
//! client got it, the usage it reports, and — on routes with `content = "encrypted"` — the
//! request and response sealed to the tenant's age recipients ([`Recorder::seal`]).
//!
//! A complete response on a capture route is digested and sealed before it is returned: when
//! its content cannot be sealed the client gets 503 instead of an unrecorded answer. Without a
//! capture, its record is queued with both bodies and the ledger's writer completes it
//! ([`Recorder::defer`]). A stream is wrapped
//! in a [`Tap`] that digests (and, when capturing, keeps up to `server.max_response` of) what
//! is released, and the record is appended when the stream ends; a stream whose content could
//! not be sealed has already been delivered, so its record says so (`detail`) and the
//! security log names it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aigis_ledger::Event;
use aigis_ledger::event::{Digester, TokenUsage};
use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::BodyExt as _;
use tokio::sync::oneshot;

use crate::admit::Usage;
use crate::body::{self, Body};
use crate::error::{Family, GatewayError};
use crate::inspect::stream::StreamEnd;
use crate::record::{Facts, Recorder};
use crate::server::Shared;
use crate::settle::{UsageScan, UsageSlot};

/// What the record still needs once the response is known.
pub(crate) struct Pending {
    /// The request's outcomes, which become the event.
    pub facts: Facts,
    /// The request body, to digest.
    pub prompt: Option<Bytes>,
    /// Error body family.
    pub family: Family,
    /// What a streamed record keeps until its stream ends.
    pub later: Later,
}

/// The owned parts of [`Pending`].
pub(crate) struct Later {
    /// `(tenant, request body)` when the route captures content.
    pub capture: Option<(String, Bytes)>,
    /// How an inspected stream ended.
    pub stream_end: Option<oneshot::Receiver<StreamEnd>>,
    /// Largest response content kept for sealing.
    pub max_capture: usize,
    /// The usage the `settle` stage settled with.
    pub usage: UsageSlot,
}

/// What a [`Tap`] saw when its stream ended (or was dropped).
struct TapEnd {
    digest: String,
    captured: Option<Vec<u8>>,
    truncated: bool,
    complete: bool,
}

/// A streamed body that digests, and optionally keeps, what it releases.
pub(crate) struct Tap {
    inner: Body,
    // The mutex only makes the body `Sync`; it is reached through `get_mut`, never locked.
    digester: Option<Mutex<Digester>>,
    captured: Option<Vec<u8>>,
    max_capture: usize,
    truncated: bool,
    usage: UsageScan,
    on_end: Option<oneshot::Sender<(TapEnd, Option<Usage>)>>,
}

impl Tap {
    fn end(&mut self, complete: bool) {
        let (Some(tx), Some(d)) = (self.on_end.take(), self.digester.take()) else {
            return;
        };
        let digest = d
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .finish();
        let _ = tx.send((
            TapEnd {
                digest,
                captured: self.captured.take(),
                truncated: self.truncated,
                complete,
            },
            self.usage.usage(),
        ));
    }

    fn observe(&mut self, data: &Bytes) {
        if let Some(d) = self.digester.as_mut() {
            d.get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .update(data);
        }
        self.usage.push(data);
        if let Some(buf) = self.captured.as_mut() {
            let room = self.max_capture.saturating_sub(buf.len());
            if data.len() > room {
                self.truncated = true;
            }
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
}

impl http_body::Body for Tap {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.observe(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.end(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // The client went away before the end: what it got is digested, and partial.
        self.end(false);
    }
}

/// The `usage` object of a complete JSON response, read without parsing the whole body: the
/// last `"usage"` key (providers put it at the end; inside a JSON string the quotes would be
/// escaped), then one JSON value after its colon.
pub(crate) fn reported_usage(body: &[u8]) -> Option<Usage> {
    const KEY: &[u8] = b"\"usage\"";
    // Built once: building a searcher costs more than searching a typical response.
    static FINDER: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(KEY));
    let at = FINDER.rfind(body)?;
    let rest = body.get(at + KEY.len()..)?;
    Usage::from_json_prefix(rest.trim_ascii_start().strip_prefix(b":")?)
}

fn tokens(u: Usage) -> TokenUsage {
    TokenUsage {
        prompt: u.prompt,
        completion: u.completion,
    }
}

/// Finishes the record of a request: digests (and seals) the response, appends the event, and
/// returns the response to send.
pub(crate) async fn finish(
    shared: &Arc<Shared>,
    pending: Pending,
    response: Response<Body>,
) -> Response<Body> {
    let Some(recorder) = &shared.ledger else {
        return response;
    };
    let Pending {
        facts,
        prompt,
        family,
        later,
    } = pending;
    let request_id = facts.request_id.to_str().unwrap_or_default();
    let prompt_digest = |recorder: &Recorder| {
        prompt
            .as_ref()
            .map(|p| recorder.digest("prompt", request_id, p))
    };
    if crate::settle::is_event_stream(&response) {
        let (on_end, end) = oneshot::channel();
        let digester = Mutex::new(recorder.digester("response", request_id));
        let captured = later.capture.is_some().then(Vec::new);
        let max_capture = later.max_capture;
        let response = response.map(move |inner| {
            Tap {
                inner,
                digester: Some(digester),
                captured,
                max_capture,
                truncated: false,
                usage: UsageScan::default(),
                on_end: Some(on_end),
            }
            .boxed()
        });
        let limits = facts.limit_pairs();
        let mut outcome = facts.outcome(&limits);
        outcome.prompt_digest = prompt_digest(recorder);
        let event = crate::record::event(outcome);
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Some(ledger) = &shared.ledger {
                let event = streamed_event(ledger, event, later, end).await;
                ledger.append(event).await;
            }
        });
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = body::whole(body).await;
    let usage = later.usage.get().copied();
    let Some((tenant, request)) = later.capture else {
        recorder
            .defer(facts, prompt.as_deref(), &bytes, usage)
            .await;
        return Response::from_parts(parts, body::full(bytes));
    };
    let limits = facts.limit_pairs();
    let mut outcome = facts.outcome(&limits);
    outcome.prompt_digest = prompt_digest(recorder);
    outcome.response_digest = Some(recorder.digest("response", request_id, &bytes));
    outcome.tokens = usage
        .or_else(|| reported_usage(&bytes))
        .map(|u| (u.prompt, u.completion));
    match recorder.seal(tenant, request, bytes.clone()).await {
        Ok(reference) => outcome.content = Some(reference),
        Err(e) => {
            tracing::error!(target: "aigis::security", request_id = %request_id, error = %e, "content could not be sealed; refusing the response (fail-closed)");
            let refused = GatewayError::ContentUnsealed.into_response(family);
            outcome.status = refused.status().as_u16();
            outcome.detail = Some("content could not be sealed; the response was withheld");
            recorder.append(crate::record::encoded(&outcome)).await;
            return refused;
        }
    }
    recorder.append(crate::record::encoded(&outcome)).await;
    Response::from_parts(parts, body::full(bytes))
}

/// Completes a streamed request's event once its stream has ended.
async fn streamed_event(
    recorder: &Recorder,
    mut event: Event,
    later: Later,
    end: oneshot::Receiver<(TapEnd, Option<Usage>)>,
) -> Event {
    if let Some(inspected) = later.stream_end {
        let inspected = inspected.await.unwrap_or(StreamEnd {
            findings: Vec::new(),
            partial: true,
        });
        event = crate::record::with_response(event, &inspected.findings, inspected.partial);
    }
    let Ok((end, usage)) = end.await else {
        event.partial = true;
        return event;
    };
    event.response_digest = Some(end.digest);
    event.partial |= !end.complete;
    event.tokens = later.usage.get().copied().or(usage).map(tokens);
    if let (Some((tenant, request)), Some(captured)) = (later.capture, end.captured) {
        match recorder.seal(tenant, request, Bytes::from(captured)).await {
            Ok(reference) => {
                event.content = Some(reference);
                if end.truncated {
                    event.detail = Some(format!(
                        "content truncated at {} bytes (server.max_response)",
                        later.max_capture
                    ));
                }
            }
            Err(e) => {
                tracing::error!(target: "aigis::security", request_id = %event.request_id, error = %e, "streamed content could not be sealed (the stream was already delivered)");
                event.detail = Some("content could not be sealed".into());
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_a_complete_response() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"the \"usage\": {} key"}}],"usage" : {"prompt_tokens":3,"completion_tokens":7}}"#;
        assert_eq!(
            reported_usage(body).map(tokens),
            Some(TokenUsage {
                prompt: 3,
                completion: 7
            })
        );
        assert_eq!(reported_usage(br#"{"choices":[]}"#), None);
        assert_eq!(reported_usage(br#"{"usage": nope"#), None);
    }

    #[test]
    fn usage_is_followed_across_chunks() {
        let mut scan = UsageScan::default();
        scan.push(b"data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"us");
        assert_eq!(scan.usage(), None);
        scan.push(b"age\":{\"prompt_tokens\":4,\"completion_tokens\":9}}\n\ndata: [DONE]\n\n");
        assert_eq!(
            scan.usage().map(tokens),
            Some(TokenUsage {
                prompt: 4,
                completion: 9
            })
        );
    }
}
