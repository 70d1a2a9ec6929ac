//! A minimal client for a running gateway's admin API, used by CLI commands that read it
//! (`aigis limits status`). Plain HTTP only: the admin listener is bound to a private address.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest admin answer read.
const MAX_ANSWER: usize = 16 << 20;

/// What can go wrong talking to the admin API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminClientError {
    /// The URL is not a valid `http://` URL.
    #[error("invalid admin URL `{0}`")]
    Url(String),
    /// Connecting or reading failed.
    #[error("cannot reach the admin API at {url}: {detail} (is the gateway running? see --admin)")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        detail: String,
    },
}

/// `GET url` with `Authorization: Bearer key`; the status and body.
pub async fn get(url: &str, key: &str) -> Result<(u16, Bytes), AdminClientError> {
    let uri: http::Uri = url.parse().map_err(|_| AdminClientError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(AdminClientError::Url(url.into()));
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::get(uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Empty::new())
        .map_err(|_| AdminClientError::Url(url.into()))?;
    let unreachable = |detail: String| AdminClientError::Unreachable {
        url: url.into(),
        detail,
    };
    let resp = client
        .request(req)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}
