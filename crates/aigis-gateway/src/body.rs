//! Response bodies. The client always gets an infallible body: a streamed upstream body is
//! relayed chunk by chunk through [`Relay`], which turns an upstream failure or a timeout in the
//! middle of a stream into a well-formed error event instead of a silently cut connection.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::error::{Family, GatewayError};

/// The body type of every response the gateway sends.
pub type Body = BoxBody<Bytes, Infallible>;

/// A JSON response.
pub fn json(status: http::StatusCode, v: &serde_json::Value) -> http::Response<Body> {
    let mut r = http::Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// The bytes of a complete body. A buffered response ([`full`]) is one frame, returned as it
/// is: gathering it through `collect` cost a queue allocation and a second pass on every
/// recorded request.
pub async fn whole(mut body: Body) -> Bytes {
    let first = match body.frame().await {
        Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
        Some(Err(never)) => match never {},
        None => return Bytes::new(),
    };
    if http_body::Body::is_end_stream(&body) {
        return first;
    }
    let rest = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(never) => match never {},
    };
    let mut all = bytes::BytesMut::with_capacity(first.len() + rest.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&rest);
    all.freeze()
}

/// Something that must live exactly as long as a relayed stream (a concurrency permit, a gauge
/// guard, the access-log line written when the stream ends).
pub type Keepalive = Box<dyn Send + Sync + 'static>;

/// Relays an upstream body with idle and total deadlines.
pub struct Relay {
    inner: Incoming,
    upstream: String,
    family: Family,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    done: bool,
    _keep: Keepalive,
}

impl Relay {
    /// Wraps `inner`; `deadline` is the whole exchange's end.
    pub fn new(
        inner: Incoming,
        upstream: String,
        family: Family,
        idle: Duration,
        deadline: Instant,
        keep: Keepalive,
    ) -> Self {
        Self {
            inner,
            upstream,
            family,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            done: false,
            _keep: keep,
        }
    }

    fn fail(&mut self, err: &GatewayError) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.done = true;
        tracing::warn!(upstream = %self.upstream, error = %err, "stream ended early");
        Poll::Ready(Some(Ok(Frame::data(err.sse_event(self.family)))))
    }
}

impl http_body::Body for Relay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let next = Instant::now() + this.idle;
                    this.idle_timer.as_mut().reset(next);
                    match frame.into_data() {
                        Ok(data) if !data.is_empty() => {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        // Trailers and empty chunks carry nothing for the client.
                        _ => {}
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = GatewayError::Upstream {
                        upstream: this.upstream.clone(),
                        detail: format!("stream broke: {e}"),
                    };
                    return this.fail(&err);
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        let which = if this.deadline.as_mut().poll(cx).is_ready() {
            "total"
        } else if this.idle_timer.as_mut().poll(cx).is_ready() {
            "idle"
        } else {
            return Poll::Pending;
        };
        let err = GatewayError::Timeout {
            upstream: this.upstream.clone(),
            which,
        };
        this.fail(&err)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Reads a whole (non-streamed) upstream body within `max` bytes and the two deadlines.
pub async fn collect(
    mut inner: Incoming,
    upstream: &str,
    max: usize,
    idle: Duration,
    deadline: Instant,
) -> Result<Bytes, GatewayError> {
    let mut buf = bytes::BytesMut::new();
    loop {
        let frame = tokio::time::timeout_at(deadline.min(Instant::now() + idle), inner.frame());
        let frame = frame.await.map_err(|_| GatewayError::Timeout {
            upstream: upstream.to_owned(),
            which: if Instant::now() >= deadline {
                "total"
            } else {
                "idle"
            },
        })?;
        match frame {
            None => return Ok(buf.freeze()),
            Some(Err(e)) => {
                return Err(GatewayError::Upstream {
                    upstream: upstream.to_owned(),
                    detail: format!("reading the response failed: {e}"),
                });
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        return Err(GatewayError::ResponseTooLarge(upstream.to_owned()));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Reads a request body up to `max` bytes; `None` when it is larger.
pub async fn read_limited(mut body: Incoming, max: usize) -> Result<Option<Bytes>, hyper::Error> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > max {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// A body that is already a stream of bytes (used by the built-in `echo` upstream).
pub fn stream(chunks: Vec<Bytes>) -> Body {
    let frames = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Frame::data(c))));
    http_body_util::StreamBody::new(frames).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn whole_takes_one_frame_or_gathers_several() {
        assert_eq!(whole(full("one frame")).await, "one frame");
        let chunks = ["a", "bc", "", "def"].map(Bytes::from).to_vec();
        assert_eq!(whole(stream(chunks)).await, "abcdef");
        assert_eq!(whole(stream(Vec::new())).await, "");
    }
}
