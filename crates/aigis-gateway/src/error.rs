//! Every way a request can fail, and the one function that turns a failure into the response
//! the caller sees: OpenAI's `{"error":{"message","type","param","code"}}` on OpenAI endpoints,
//! Anthropic's `{"type":"error","error":{"type","message"}}` on `/v1/messages`. Messages never
//! contain prompt text or credentials.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full};

/// Which API family's error shape the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI-compatible endpoints.
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
}

/// A request the gateway refuses or cannot complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// No such endpoint.
    #[error("unknown path `{0}`; see GET /v1/models and the OpenAI API reference")]
    NotFound(String),
    /// Endpoint exists, method does not.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// Request body over `server.max_body`.
    #[error("request body exceeds the limit of {0} bytes (server.max_body)")]
    BodyTooLarge(usize),
    /// No credential, or one that is not accepted (the reason is logged, never returned).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many failed authentications from this source or for this key.
    #[error("too many failed authentication attempts; retry in {0} s")]
    AuthThrottled(u64),
    /// The policies do not allow this.
    #[error("you are not allowed to {0}")]
    Forbidden(String),
    /// The credential store cannot be reached; the gateway fails closed.
    #[error("authentication is temporarily unavailable; retry shortly")]
    AuthUnavailable,
    /// Request headers over `server.max_header`.
    #[error("request headers exceed the limit of {0} bytes (server.max_header)")]
    HeadersTooLarge(usize),
    /// The body is not acceptable; `param` names the field.
    #[error("{message}")]
    Invalid {
        /// The offending field, as a JSON path.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The guard blocked the request; `param` names the field, never its content.
    #[error("{message}")]
    ContentPolicy {
        /// The field, as a JSON path.
        param: String,
        /// What was found, without the offending text.
        message: String,
    },
    /// No route serves this model.
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    /// The model is served, but through another endpoint family.
    #[error("the model `{model}` is served through {expected}, not this endpoint")]
    WrongEndpoint {
        /// Requested model.
        model: String,
        /// Where to send it instead.
        expected: &'static str,
    },
    /// The route's self-hosted model did not pass its signature and scan check
    /// (`[routes.model_check]`); the reason is in the gateway's log, never in the response.
    #[error(
        "the model `{0}` is unavailable: its files did not pass the gateway's integrity check; the operator has been alerted"
    )]
    ModelUnverified(String),
    /// `server.max_concurrent` requests are already in flight.
    #[error("the gateway is at its concurrent request limit; retry shortly")]
    Overloaded,
    /// Every upstream of the route is refusing (breaker open, at capacity, or no credential).
    #[error("no upstream can take this request now ({0}); retry shortly")]
    Unavailable(String),
    /// Connecting to or talking to the upstream failed.
    #[error("upstream `{upstream}` failed: {detail}")]
    Upstream {
        /// Upstream name.
        upstream: String,
        /// What went wrong (no secrets, no content).
        detail: String,
    },
    /// The upstream did not answer in time.
    #[error("upstream `{upstream}` timed out ({which} timeout)")]
    Timeout {
        /// Upstream name.
        upstream: String,
        /// `connect`, `first_byte`, `idle` or `total`.
        which: &'static str,
    },
    /// A limit refused the request (429).
    #[error("{}", .0.message)]
    Limited(Box<crate::admit::Refusal>),
    /// The limit store cannot be reached and a limit that applies fails closed (503).
    #[error("limits cannot be checked right now (the limit store is unreachable); retry shortly")]
    LimitsUnavailable,
    /// The audit ledger cannot make records durable (store down in fail-closed mode, or the
    /// spool is full): traffic is refused rather than served unrecorded (503).
    #[error("the audit ledger cannot record requests right now; retry shortly")]
    LedgerUnavailable,
    /// The route captures encrypted content and it cannot be sealed for the caller's tenant
    /// (no recipients for it, or sealing failed): refused rather than stored unencrypted (503).
    #[error(
        "this route records encrypted content and it cannot be sealed for your tenant right now; the request is refused"
    )]
    ContentUnsealed,
    /// The upstream's non-streamed response is over `server.max_response`.
    #[error("upstream `{0}` sent a response larger than server.max_response")]
    ResponseTooLarge(String),
}

impl GatewayError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) | Self::ModelNotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Invalid { .. } | Self::WrongEndpoint { .. } | Self::ContentPolicy { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Overloaded | Self::AuthThrottled(_) | Self::Limited(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unavailable(_)
            | Self::ModelUnverified(_)
            | Self::AuthUnavailable
            | Self::LimitsUnavailable
            | Self::LedgerUnavailable
            | Self::ContentUnsealed => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream { .. } | Self::ResponseTooLarge(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// OpenAI-style (`type`, `code`).
    fn openai_kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::NotFound(_) => ("invalid_request_error", "unknown_url"),
            Self::Unauthenticated(_) => ("authentication_error", "invalid_api_key"),
            Self::AuthThrottled(_) => ("rate_limit_error", "too_many_auth_failures"),
            Self::Forbidden(_) => ("permission_error", "permission_denied"),
            Self::AuthUnavailable => ("api_error", "auth_unavailable"),
            Self::MethodNotAllowed(_) => ("invalid_request_error", "method_not_allowed"),
            Self::BodyTooLarge(_) => ("invalid_request_error", "request_too_large"),
            Self::HeadersTooLarge(_) => ("invalid_request_error", "headers_too_large"),
            Self::Invalid { .. } => ("invalid_request_error", "invalid_value"),
            Self::ContentPolicy { .. } => ("invalid_request_error", "content_policy_violation"),
            Self::ModelNotFound(_) => ("invalid_request_error", "model_not_found"),
            Self::WrongEndpoint { .. } => ("invalid_request_error", "wrong_endpoint"),
            Self::ModelUnverified(_) => ("api_error", "model_unverified"),
            Self::Overloaded => ("rate_limit_error", "gateway_overloaded"),
            Self::Limited(r) if r.quota => ("insufficient_quota", "insufficient_quota"),
            Self::Limited(_) => ("rate_limit_error", "rate_limit_exceeded"),
            Self::LimitsUnavailable => ("api_error", "limits_unavailable"),
            Self::LedgerUnavailable | Self::ContentUnsealed => ("api_error", "audit_unavailable"),
            Self::Unavailable(_) => ("api_error", "upstream_unavailable"),
            Self::Upstream { .. } => ("api_error", "upstream_error"),
            Self::Timeout { .. } => ("api_error", "upstream_timeout"),
            Self::ResponseTooLarge(_) => ("api_error", "upstream_response_too_large"),
        }
    }

    fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            504 => "timeout_error",
            500.. => "api_error",
            _ => "invalid_request_error",
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::Invalid { param, .. } | Self::ContentPolicy { param, .. } => Some(param),
            Self::ModelNotFound(_) | Self::WrongEndpoint { .. } | Self::ModelUnverified(_) => {
                Some("model")
            }
            _ => None,
        }
    }

    /// The JSON error body in `family`'s shape.
    pub fn body(&self, family: Family) -> serde_json::Value {
        let message = self.to_string();
        match family {
            Family::OpenAi => {
                let (kind, code) = self.openai_kind();
                serde_json::json!({"error": {
                    "message": message, "type": kind, "param": self.param(), "code": code,
                }})
            }
            Family::Anthropic => serde_json::json!({
                "type": "error",
                "error": {"type": self.anthropic_type(), "message": message},
            }),
        }
    }

    /// The error as a complete HTTP response.
    pub fn into_response(self, family: Family) -> Response<Body> {
        let mut resp = Response::new(full(Bytes::from(self.body(family).to_string())));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match &self {
            Self::Limited(r) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(r.retry_after_secs));
                resp.headers_mut().extend(r.headers.clone());
            }
            Self::Overloaded
            | Self::Unavailable(_)
            | Self::AuthUnavailable
            | Self::LimitsUnavailable => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::AuthThrottled(secs) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::Unauthenticated(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"aigis\""),
                );
            }
            _ => {}
        }
        resp
    }

    /// The error as the last event of a server-sent-events stream, which the OpenAI and
    /// Anthropic SDKs raise as an error (OpenAI streams then end with `[DONE]`).
    pub fn sse_event(&self, family: Family) -> Bytes {
        let body = self.body(family);
        Bytes::from(match family {
            Family::OpenAi => format!("data: {body}\n\ndata: [DONE]\n\n"),
            Family::Anthropic => format!("event: error\ndata: {body}\n\n"),
        })
    }
}
