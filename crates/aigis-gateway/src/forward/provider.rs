//! Provider adapters: what differs between upstream families on the wire. OpenAI-compatible
//! servers are configuration (a base URL); Anthropic has its own credential header and
//! version header. A new family is one more arm here and a new `UpstreamKind`.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{Secret, UpstreamKind};

/// Request headers a client may pass to an upstream. Everything else, including every
/// client credential (`Authorization`, `x-api-key`, `api-key`, `Cookie`,
/// `Proxy-Authorization`) and `Accept-Encoding`, is dropped.
/// Names made once, so a request does not parse them again.
static PASSED_REQUEST_HEADERS: [HeaderName; 5] = [
    http::header::ACCEPT,
    http::header::USER_AGENT,
    HeaderName::from_static("anthropic-version"),
    HeaderName::from_static("anthropic-beta"),
    HeaderName::from_static("openai-beta"),
];

/// Builds the upstream request headers: the allowed client headers, the JSON content type,
/// the request id and the upstream's own credential.
pub fn request_headers(
    kind: UpstreamKind,
    client: &HeaderMap,
    key: Option<&Secret>,
    request_id: &HeaderValue,
) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::with_capacity(8);
    for name in &PASSED_REQUEST_HEADERS {
        if let Some(v) = client.get(name) {
            h.insert(name.clone(), v.clone());
        }
    }
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(HeaderName::from_static("x-request-id"), request_id.clone());
    let secret = |s: &str| {
        let mut v = HeaderValue::from_str(s)
            .map_err(|_| "the upstream credential is not a valid header value".to_owned())?;
        v.set_sensitive(true);
        Ok::<_, String>(v)
    };
    match (kind, key) {
        (UpstreamKind::OpenAi, Some(k)) => {
            h.insert(
                http::header::AUTHORIZATION,
                secret(&format!("Bearer {}", k.expose()))?,
            );
        }
        (UpstreamKind::Anthropic, key) => {
            if let Some(k) = key {
                h.insert(HeaderName::from_static("x-api-key"), secret(k.expose())?);
            }
            h.entry(HeaderName::from_static("anthropic-version"))
                .or_insert(HeaderValue::from_static("2023-06-01"));
        }
        _ => {}
    }
    Ok(h)
}

/// Response headers never passed back to the client: hop-by-hop headers, cookies and
/// alternative services of the upstream's host, and the length (the gateway frames the body).
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "alt-svc",
    "content-length",
];

/// Filters upstream response headers for the client; the upstream's own request id is kept
/// as `x-upstream-request-id`.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let listed: Vec<String> = upstream
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let n = name.as_str();
        if DROPPED_RESPONSE_HEADERS.contains(&n) || listed.iter().any(|l| l == n) {
            continue;
        }
        if n == "x-request-id" {
            out.append(
                HeaderName::from_static("x-upstream-request-id"),
                value.clone(),
            );
        } else {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_never_pass() {
        let mut client = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer client-key"),
            ("x-api-key", "client-key"),
            ("api-key", "client-key"),
            ("cookie", "session=client"),
            ("proxy-authorization", "Basic x"),
            ("accept-encoding", "gzip"),
            ("user-agent", "OpenAI/Python"),
        ] {
            client.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let rid = HeaderValue::from_static("req-1");
        let h = request_headers(UpstreamKind::OpenAi, &client, None, &rid).unwrap();
        assert!(
            h.iter()
                .all(|(_, v)| !v.to_str().unwrap().contains("client"))
        );
        assert_eq!(h["user-agent"], "OpenAI/Python");
        assert!(h.get("accept-encoding").is_none());
    }

    #[test]
    fn hop_by_hop_and_listed_headers_are_dropped() {
        let mut up = HeaderMap::new();
        up.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        up.insert("x-secret-hop", HeaderValue::from_static("1"));
        up.insert("set-cookie", HeaderValue::from_static("a=b"));
        up.insert("x-request-id", HeaderValue::from_static("up-1"));
        up.insert("openai-processing-ms", HeaderValue::from_static("5"));
        let out = response_headers(&up);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out["x-upstream-request-id"], "up-1");
    }
}
