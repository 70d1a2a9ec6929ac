//! The connection pool to one upstream, on hyper's connection API: HTTP/1.1 connections are
//! lent out one request at a time and come back when the response body is done with; an
//! HTTP/2 connection (chosen by ALPN) is shared by every request. TLS is rustls with the
//! aws-lc-rs provider (X25519MLKEM768 preferred).
//!
//! A pool per upstream, rather than hyper-util's general client, because the gateway knows
//! its destination in advance: there is no pool key to hash, no `Host` header or URI form to
//! work out per request, and no task spawned per request to watch for the connection's
//! return (measured in docs/BENCHMARKS.md, "own upstream pool").

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

type Body = Full<Bytes>;

/// Idle HTTP/1.1 connections kept per upstream.
const MAX_IDLE: usize = 256;
/// How long an idle connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (`timed_out`: within the connect timeout).
    Connect { detail: String, timed_out: bool },
    /// The connection failed during the exchange.
    Http(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect { detail, .. } => f.write_str(detail),
            Self::Http(e) => match std::error::Error::source(e) {
                Some(cause) => write!(f, "{e}: {cause}"),
                None => write!(f, "{e}"),
            },
        }
    }
}

/// The pool to one upstream (its scheme, host and port come from the upstream's base URL).
pub struct Pool {
    host: String,
    port: u16,
    /// The `Host` header HTTP/1.1 requests carry.
    host_header: HeaderValue,
    /// `Some` for `https` upstreams.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    connections: Arc<Connections>,
}

#[derive(Default)]
struct Connections {
    /// Idle HTTP/1.1 connections in the order they came back (so oldest first).
    idle: Mutex<Vec<(http1::SendRequest<Body>, Instant)>>,
    /// The HTTP/2 connection, when the upstream chose HTTP/2.
    h2: Mutex<Option<http2::SendRequest<Body>>>,
}

/// An HTTP/1.1 connection lent to one exchange; it goes back to the pool when dropped, which
/// the caller does once it no longer reads the response body. A connection whose body was not
/// read to its end is closed by hyper, and the pool drops it when it next looks at it.
pub struct Lease(Option<(http1::SendRequest<Body>, Arc<Connections>)>);

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((sender, connections)) = self.0.take() {
            let mut idle = lock(&connections.idle);
            if idle.len() < MAX_IDLE && !sender.is_closed() {
                idle.push((sender, Instant::now()));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Conn {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

impl Pool {
    /// A pool to `base` (an `http` or `https` URL), using `tls` for `https` (the pool sets
    /// its ALPN: `h2`, then `http/1.1`).
    pub fn new(
        base: &Uri,
        mut tls: rustls::ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let bracketed = base.host().ok_or("the base URL has no host")?;
        let host = bracketed
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = match base.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the base URL must be http or https".into()),
        };
        let default_port = if https { 443 } else { 80 };
        let port = base.port_u16().unwrap_or(default_port);
        // `Host` names the port only when it is not the scheme's default.
        let host_header = if port == default_port {
            HeaderValue::from_str(bracketed)
        } else {
            HeaderValue::from_str(&format!("{bracketed}:{port}"))
        }
        .map_err(|_| "the base URL's host is not a valid Host header")?;
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))?;
            tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Some((TlsConnector::from(Arc::new(tls)), name))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            host_header,
            tls,
            connect_timeout,
            connections: Arc::default(),
        })
    }

    /// Sends `req` (with an absolute URI at this upstream) on a pooled or new connection and
    /// returns the response head. Keep the [`Lease`] until the body is no longer read.
    pub async fn send(
        &self,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        // A request that met a connection the upstream had just closed was not sent: it is
        // tried again, on the next idle connection or a new one.
        loop {
            let (conn, reused) = self.checkout().await?;
            match conn {
                Conn::H2(mut sender) => {
                    if req.uri().scheme().is_none() {
                        // Retried from HTTP/1.1, which took the URI to its origin form.
                        *req.uri_mut() = self.absolute(req.uri());
                    }
                    return match sender.try_send_request(req).await {
                        Ok(resp) => Ok((resp, Lease(None))),
                        Err(mut e) => match e.take_message() {
                            Some(back) if reused => {
                                lock(&self.connections.h2).take();
                                req = back;
                                continue;
                            }
                            _ => Err(SendError::Http(e.into_error())),
                        },
                    };
                }
                Conn::H1(mut sender) => {
                    let uri = req.uri_mut();
                    if let Some(pq) = uri.path_and_query().cloned() {
                        *uri = Uri::from(pq);
                    }
                    req.headers_mut()
                        .entry(http::header::HOST)
                        .or_insert_with(|| self.host_header.clone());
                    match sender.try_send_request(req).await {
                        Ok(resp) => {
                            let lease = Lease(Some((sender, self.connections.clone())));
                            return Ok((resp, lease));
                        }
                        Err(mut e) => match e.take_message() {
                            Some(back) if reused => req = back,
                            _ => return Err(SendError::Http(e.into_error())),
                        },
                    }
                }
            }
        }
    }

    /// `origin` (a path and query) as an absolute URI at this upstream.
    fn absolute(&self, origin: &Uri) -> Uri {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let pq = origin
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let host = self.host_header.to_str().unwrap_or_default();
        format!("{scheme}://{host}{pq}")
            .parse()
            .unwrap_or_else(|_| origin.clone())
    }

    /// A ready connection: the HTTP/2 one, the most recent idle HTTP/1.1 one that is still
    /// open, or a new one. `true` when it was used before.
    async fn checkout(&self) -> Result<(Conn, bool), SendError> {
        if let Some(h2) = lock(&self.connections.h2)
            .as_ref()
            .filter(|s| !s.is_closed())
        {
            return Ok((Conn::H2(h2.clone()), true));
        }
        loop {
            let popped = {
                let mut idle = lock(&self.connections.idle);
                // Oldest first: those idle too long are closed.
                let now = Instant::now();
                let expired = idle.partition_point(|(_, since)| now - *since >= IDLE_TIMEOUT);
                idle.drain(..expired);
                idle.pop()
            };
            let Some((mut sender, _)) = popped else { break };
            // Ready at once unless hyper is still finishing the previous response; a closed
            // connection fails here and the next one is tried.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Ok((Conn::H1(sender), true));
            }
        }
        // Boxed: the TLS handshake's state is large, and every request future (which hyper
        // allocates for each client connection, idle or not) would otherwise carry it.
        Box::pin(self.connect()).await.map(|c| (c, false))
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let attempt = async {
            let tcp = connect_tcp(&self.host, self.port)
                .await
                .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
            let _ = tcp.set_nodelay(true);
            let Some((connector, name)) = &self.tls else {
                return handshake_h1(TokioIo::new(tcp)).await;
            };
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS with {}: {e}", self.host))?;
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .map_err(|e| format!("HTTP/2 handshake with {}: {e}", self.host))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                    }
                });
                *lock(&self.connections.h2) = Some(sender.clone());
                return Ok(Conn::H2(sender));
            }
            handshake_h1(TokioIo::new(tls)).await
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(detail)) => Err(SendError::Connect {
                detail,
                timed_out: false,
            }),
            Err(_) => Err(SendError::Connect {
                detail: format!("connecting to {}:{} timed out", self.host, self.port),
                timed_out: true,
            }),
        }
    }
}

/// How long one address gets before the next is tried alongside it (RFC 8305's "connection
/// attempt delay").
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to `host`, trying its addresses as RFC 8305 ("happy eyeballs") says: IPv6 and
/// IPv4 interleaved, a new attempt when one fails or [`ATTEMPT_DELAY`] passes, the first
/// connection wins. A blackholed address family then costs a quarter of a second, not the whole
/// connect timeout.
async fn connect_tcp(host: &str, port: u16) -> std::io::Result<TcpStream> {
    connect_any(interleaved(
        tokio::net::lookup_host((host, port)).await?.collect(),
    ))
    .await
}

/// The first of `addrs` that accepts, tried in order with the attempt delay.
async fn connect_any(addrs: Vec<std::net::SocketAddr>) -> std::io::Result<TcpStream> {
    use futures_util::StreamExt as _;
    let mut next = addrs.into_iter();
    let mut attempts = futures_util::stream::FuturesUnordered::new();
    let mut last_err = None;
    loop {
        if let Some(addr) = next.next() {
            attempts.push(TcpStream::connect(addr));
        } else if attempts.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")
            }));
        }
        tokio::select! {
            Some(result) = attempts.next() => match result {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last_err = Some(e),
            },
            () = tokio::time::sleep(ATTEMPT_DELAY), if next.len() > 0 => {}
        }
    }
}

/// `addrs` reordered to alternate between the families, starting with the first one's.
fn interleaved(addrs: Vec<std::net::SocketAddr>) -> Vec<std::net::SocketAddr> {
    let first_v6 = addrs.first().is_some_and(std::net::SocketAddr::is_ipv6);
    let mut out = Vec::with_capacity(addrs.len());
    let (first, second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut second = second.into_iter();
    for a in first {
        out.push(a);
        out.extend(second.next());
    }
    out.extend(second);
    out
}

async fn handshake_h1<T>(io: TokioIo<T>) -> Result<Conn, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(Conn::H1(sender))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// A minimal HTTP/1.1 upstream: answers `ok` to each request; closes the connection after
    /// each answer when `close` is set. Returns its base URL and the connections it accepted.
    async fn upstream(close: bool) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 1024];
                        let Ok(n @ 1..) = tcp.read(&mut chunk).await else {
                            return;
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        // Requests carry `{}` as their body.
                        while let Some(end) = buf.windows(6).position(|w| w == b"\r\n\r\n{}") {
                            buf.drain(..end + 6);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            tcp.write_all(answer).await.unwrap();
                            if close {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (base.parse().unwrap(), accepted)
    }

    fn pool(base: &Uri) -> Pool {
        let tls = crate::forward::client::tls_config(None).unwrap();
        Pool::new(base, tls, Duration::from_secs(2)).unwrap()
    }

    fn request(base: &Uri) -> Request<Body> {
        Request::post(format!("{base}/chat/completions"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    async fn body(resp: Response<Incoming>) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    /// One whole exchange: the answer read, the connection given back.
    async fn exchange(pool: &Pool, base: &Uri) {
        let (resp, _lease) = pool.send(request(base)).await.unwrap();
        assert_eq!(body(resp).await, "ok");
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection() {
        let (base, accepted) = upstream(false).await;
        let pool = pool(&base);
        for _ in 0..5 {
            exchange(&pool, &base).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_still_lent_out_is_not_shared() {
        let (base, accepted) = upstream(false).await;
        let pool = pool(&base);
        // The first response's body is not read yet (a stream in progress)...
        let (first, first_lease) = pool.send(request(&base)).await.unwrap();
        // ...so the second request gets a connection of its own instead of waiting.
        let second = tokio::time::timeout(Duration::from_secs(5), pool.send(request(&base)));
        let (second, second_lease) = second.await.expect("not queued behind").unwrap();
        assert_eq!(body(second).await, "ok");
        assert_eq!(body(first).await, "ok");
        drop((first_lease, second_lease));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // Both went back to the pool: two more requests need no new connection.
        for _ in 0..2 {
            exchange(&pool, &base).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_idle_too_long_is_closed() {
        let (base, accepted) = upstream(false).await;
        let pool = pool(&base);
        exchange(&pool, &base).await;
        tokio::time::advance(IDLE_TIMEOUT).await;
        // Held, so the pool's idle list shows only what expiry left in it.
        let (resp, _lease) = pool.send(request(&base)).await.unwrap();
        assert_eq!(body(resp).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert!(lock(&pool.connections.idle).is_empty());
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        let (base, accepted) = upstream(true).await;
        let pool = pool(&base);
        for _ in 0..3 {
            exchange(&pool, &base).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_host_header_names_a_port_only_when_it_is_not_the_default() {
        let host = |url: &str| pool(&url.parse().unwrap()).host_header;
        assert_eq!(host("https://api.example.com/v1"), "api.example.com");
        assert_eq!(host("https://api.example.com:443/v1"), "api.example.com");
        assert_eq!(host("http://127.0.0.1:8000/v1"), "127.0.0.1:8000");
        assert_eq!(host("http://[::1]:11434/v1"), "[::1]:11434");
    }

    #[test]
    fn an_origin_form_uri_is_made_absolute_again() {
        let pool = pool(&"https://api.example.com:8443/v1".parse().unwrap());
        let origin: Uri = "/v1/chat/completions?x=1".parse().unwrap();
        assert_eq!(
            pool.absolute(&origin),
            "https://api.example.com:8443/v1/chat/completions?x=1"
        );
    }

    #[test]
    fn addresses_alternate_between_families() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let (v6a, v6b, v4a, v4b, v4c) = (
            a("[::1]:1"),
            a("[::2]:1"),
            a("127.0.0.1:1"),
            a("127.0.0.2:1"),
            a("127.0.0.3:1"),
        );
        assert_eq!(
            interleaved(vec![v6a, v6b, v4a, v4b, v4c]),
            [v6a, v4a, v6b, v4b, v4c]
        );
        assert_eq!(interleaved(vec![v4a, v4b, v6a]), [v4a, v6a, v4b]);
        assert_eq!(interleaved(vec![v4a, v4b]), [v4a, v4b]);
        assert!(interleaved(Vec::new()).is_empty());
    }

    #[tokio::test]
    async fn an_address_that_refuses_gives_way_to_the_next() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refusing = closed.local_addr().unwrap();
        drop(closed);
        let (base, _) = upstream(false).await;
        let open: std::net::SocketAddr = base.authority().unwrap().as_str().parse().unwrap();
        let tcp = connect_any(vec![refusing, open]).await.unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), open);
        let err = connect_any(vec![refusing]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            connect_any(Vec::new()).await.unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base: Uri = format!("http://{}/v1", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(listener);
        let Err(err) = pool(&base).send(request(&base)).await else {
            panic!("a closed port answered");
        };
        assert!(
            matches!(
                err,
                SendError::Connect {
                    timed_out: false,
                    ..
                }
            ),
            "{err}"
        );
    }
}
