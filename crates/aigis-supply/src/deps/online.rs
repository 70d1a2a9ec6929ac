//! Optional online mode: ask the OSV API which advisories affect the scanned packages and feed
//! the records into the same matching as the offline database.
//!
//! Two steps, as the OSV API is meant to be used for many packages: `POST /v1/querybatch` with up
//! to [`BATCH`] `{package, version}` queries per request (following `next_page_token`s), which
//! answers with advisory ids only; then `GET /v1/vulns/{id}` once per distinct id (cached for the
//! run, [`CONCURRENT_FETCHES`] at a time) for the full records. The records are parsed like
//! imported ones ([`osv::parse_record`]), so the version is evaluated by aigis's own range code,
//! not by the service's verdict. Every response has a size limit and every request a timeout;
//! a service that cannot be reached or answers badly is an error, never an empty result.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::ecosystem::Ecosystem;
use super::osv::{self, Advisory, Parsed, Syntax};

/// The public OSV API.
pub const DEFAULT_URL: &str = "https://api.osv.dev";
/// Queries per `querybatch` request (the API's limit).
pub const BATCH: usize = 1000;
/// Largest `querybatch` answer read.
pub const MAX_BATCH_RESPONSE: usize = 32 << 20;
/// Largest advisory record read (as for imported records).
pub const MAX_RECORD_RESPONSE: usize = osv::MAX_RECORD_BYTES;
/// Most result pages followed per query.
pub const MAX_PAGES: usize = 20;
/// Most distinct advisories fetched in one run.
pub const MAX_ADVISORIES: usize = 50_000;
/// Records fetched at the same time.
pub const CONCURRENT_FETCHES: usize = 8;
/// Default time allowed for one request, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Online {
    base: String,
    /// Time allowed for one request (connection, request and the whole answer).
    pub timeout: Duration,
    /// Queries per `querybatch` request (1 to [`BATCH`]).
    pub batch: usize,
}

/// The online mode failed; the scan is not reported as clean.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OSV service {url}: {message}")]
pub struct OnlineError {
    /// The URL asked (or the base URL).
    pub url: String,
    /// What went wrong.
    pub message: String,
}

fn fail(url: &str, message: impl Into<String>) -> OnlineError {
    OnlineError {
        url: url.to_owned(),
        message: message.into(),
    }
}

impl Online {
    /// The service at `base` (`https://api.osv.dev` or a mirror; `http://` only for loopback
    /// testing and private mirrors), with the default timeout and batch size.
    pub fn new(base: &str) -> Result<Self, OnlineError> {
        let trimmed = base.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or_else(|| fail(base, "the URL must start with https:// or http://"))?;
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err(fail(
                base,
                "expected a base URL such as https://api.osv.dev",
            ));
        }
        trimmed
            .parse::<hyper::Uri>()
            .map_err(|e| fail(base, format!("not a URL: {e}")))?;
        Ok(Self {
            base: trimmed.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            batch: BATCH,
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }
}

/// One package version to ask about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// The name as the input spells it (sent to the service).
    pub name: String,
    /// The normalised name (the key advisories are filed under).
    pub key: String,
    /// The version.
    pub version: String,
}

/// What the service contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnlineSummary {
    /// The base URL.
    pub url: String,
    /// Package versions asked about.
    pub queried: usize,
    /// `querybatch` requests sent.
    pub requests: usize,
    /// Distinct advisory records fetched.
    pub records: usize,
    /// Of those, withdrawn ones (ignored).
    pub withdrawn: usize,
}

/// Advisories by ecosystem and normalised name, as [`super::db::Database::advisories_for`]
/// returns them.
pub type Found = HashMap<Ecosystem, HashMap<String, Vec<Advisory>>>;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Asks the service about `queries` and returns the advisories naming them.
pub fn fetch(online: &Online, queries: &[Query]) -> Result<(Found, OnlineSummary), OnlineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&online.base, format!("cannot start the HTTP client: {e}")))?;
    runtime.block_on(fetch_async(online, queries))
}

async fn fetch_async(
    online: &Online,
    queries: &[Query],
) -> Result<(Found, OnlineSummary), OnlineError> {
    let client = client(online)?;
    let mut summary = OnlineSummary {
        url: online.base.clone(),
        queried: queries.len(),
        ..OnlineSummary::default()
    };
    let ids = query_ids(&client, online, queries, &mut summary).await?;
    let distinct: BTreeSet<&str> = ids.iter().flatten().map(String::as_str).collect();
    if distinct.len() > MAX_ADVISORIES {
        return Err(fail(
            &online.base,
            format!(
                "{} advisories named, more than the {MAX_ADVISORIES} one run fetches",
                distinct.len()
            ),
        ));
    }
    let records = fetch_records(&client, online, distinct).await?;
    summary.records = records.len();
    let mut found = Found::new();
    for (query, ids) in queries.iter().zip(&ids) {
        for id in ids {
            match records.get(id.as_str()) {
                Some(Some(advisory)) => file_under(&mut found, query, advisory),
                Some(None) => {}
                None => return Err(fail(&online.base, format!("no record fetched for {id}"))),
            }
        }
    }
    summary.withdrawn = records.values().filter(|r| r.is_none()).count();
    Ok((found, summary))
}

/// Keeps only `query`'s package entries of `advisory`, as the offline index does.
fn file_under(found: &mut Found, query: &Query, advisory: &Advisory) {
    let affected: Vec<_> = advisory
        .affected
        .iter()
        .filter(|e| {
            e.ecosystem == query.ecosystem && query.ecosystem.normalize_name(&e.name) == query.key
        })
        .cloned()
        .collect();
    if affected.is_empty() {
        return;
    }
    let list = found
        .entry(query.ecosystem)
        .or_default()
        .entry(query.key.clone())
        .or_default();
    if !list.iter().any(|a| a.id == advisory.id) {
        list.push(Advisory {
            affected,
            ..advisory.clone()
        });
    }
}

fn client(online: &Online) -> Result<HttpClient, OnlineError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(&online.base, format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(online.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    results: Vec<BatchResult>,
}

#[derive(Deserialize)]
struct BatchResult {
    #[serde(default)]
    vulns: Vec<VulnRef>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct VulnRef {
    id: String,
}

/// The advisory ids the service names for each query (same order as `queries`).
async fn query_ids(
    client: &HttpClient,
    online: &Online,
    queries: &[Query],
    summary: &mut OnlineSummary,
) -> Result<Vec<BTreeSet<String>>, OnlineError> {
    let url = format!("{}/v1/querybatch", online.base);
    let mut ids = vec![BTreeSet::new(); queries.len()];
    let mut pending: Vec<(usize, Option<String>)> = (0..queries.len()).map(|i| (i, None)).collect();
    let mut pages = 0;
    while !pending.is_empty() {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(fail(
                &url,
                format!("more than {MAX_PAGES} pages of results"),
            ));
        }
        let mut next = Vec::new();
        for chunk in pending.chunks(online.batch.clamp(1, BATCH)) {
            let body = batch_body(queries, chunk);
            let request = hyper::Request::post(&url)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| fail(&url, e.to_string()))?;
            let answer = send(client, request, &url, MAX_BATCH_RESPONSE, online.timeout).await?;
            summary.requests += 1;
            let answer: BatchAnswer = serde_json::from_slice(&answer)
                .map_err(|e| fail(&url, format!("not a querybatch answer: {e}")))?;
            if answer.results.len() != chunk.len() {
                return Err(fail(
                    &url,
                    format!(
                        "{} results for {} queries",
                        answer.results.len(),
                        chunk.len()
                    ),
                ));
            }
            for ((index, _), result) in chunk.iter().zip(answer.results) {
                for vuln in result.vulns {
                    if !valid_id(&vuln.id) {
                        return Err(fail(&url, format!("unusable advisory id {:?}", vuln.id)));
                    }
                    ids[*index].insert(vuln.id);
                }
                if let Some(token) = result.next_page_token.filter(|t| !t.is_empty()) {
                    next.push((*index, Some(token)));
                }
            }
        }
        pending = next;
    }
    Ok(ids)
}

fn batch_body(queries: &[Query], chunk: &[(usize, Option<String>)]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = chunk
        .iter()
        .map(|(index, token)| {
            let q = &queries[*index];
            let mut value = serde_json::json!({
                "package": {"name": q.name, "ecosystem": q.ecosystem.as_str()},
                "version": q.version,
            });
            if let Some(token) = token {
                value["page_token"] = token.as_str().into();
            }
            value
        })
        .collect();
    serde_json::json!({ "queries": list })
        .to_string()
        .into_bytes()
}

/// An id that is safe in a URL path (`GHSA-xxxx-…`, `PYSEC-2021-76`, `RUSTSEC-2016-0001`).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        && !id.starts_with('.')
}

/// Fetches each record once; `None` for a withdrawn record.
async fn fetch_records(
    client: &HttpClient,
    online: &Online,
    ids: BTreeSet<&str>,
) -> Result<HashMap<String, Option<Advisory>>, OnlineError> {
    let mut records = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = ids.into_iter();
    loop {
        while tasks.len() < CONCURRENT_FETCHES {
            let Some(id) = ids.next() else { break };
            let client = client.clone();
            let url = format!("{}/v1/vulns/{id}", online.base);
            let (id, timeout) = (id.to_owned(), online.timeout);
            tasks.spawn(async move {
                let record = fetch_record(&client, &url, &id, timeout).await;
                (id, record)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (id, record) = done.map_err(|e| fail(&online.base, format!("fetch task: {e}")))?;
        records.insert(id, record?);
    }
    Ok(records)
}

async fn fetch_record(
    client: &HttpClient,
    url: &str,
    id: &str,
    timeout: Duration,
) -> Result<Option<Advisory>, OnlineError> {
    let request = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| fail(url, e.to_string()))?;
    let body = send(client, request, url, MAX_RECORD_RESPONSE, timeout).await?;
    match osv::parse_record(&body, Syntax::Json) {
        Ok(Parsed::Advisory(advisory)) if advisory.id == id => Ok(Some(advisory)),
        Ok(Parsed::Advisory(advisory)) => Err(fail(
            url,
            format!("asked for {id}, the record is {}", advisory.id),
        )),
        Ok(Parsed::Withdrawn(_)) => Ok(None),
        Err(e) => Err(fail(url, format!("not an OSV record ({e})"))),
    }
}

/// Sends `request` and reads a successful answer of at most `limit` bytes within `timeout`.
async fn send(
    client: &HttpClient,
    request: hyper::Request<Full<Bytes>>,
    url: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, OnlineError> {
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| fail(url, format!("cannot reach the service: {}", chain(&e))))?;
        let status = response.status();
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(fail(url, format!("answer larger than {limit} bytes")));
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    fail(url, format!("answer larger than {limit} bytes"))
                } else {
                    fail(url, format!("answer cut short: {}", chain(e.as_ref())))
                }
            })?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(fail(url, format!("HTTP {status}: {}", text.trim())));
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        fail(
            url,
            format!("no complete answer within {} s", timeout.as_secs_f64()),
        )
    })?
}

/// An error and its sources, `: `-separated (hyper's own message is only "client error").
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let _ = write!(text, ": {inner}");
        source = inner.source();
    }
    text
}
