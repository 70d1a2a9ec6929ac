//! Listeners and lifecycle: bind the public and admin listeners, serve HTTP/1.1 and HTTP/2
//! (TLS or plain), swap the configuration atomically on reload, and drain in-flight requests
//! and streams on shutdown within `server.shutdown_grace`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::admin;
use crate::config::{self, Config, ConfigError, Diagnostic};
use crate::forward::UpstreamState;
use crate::identify::{Identity, KeySpec, Throttle};
use crate::metrics::{Metrics, ReloadLabels, TlsLabels};
use crate::model_check::{ModelCheck, Unverified};
use crate::pipeline::{self, Peer};

/// Everything one configuration generation needs; swapped whole on reload.
pub struct Runtime {
    /// The configuration.
    pub config: Config,
    /// Live upstream state, indexed like `config.upstreams`.
    pub upstreams: Vec<UpstreamState>,
    /// Identity methods (`None`: every caller is anonymous).
    pub identity: Option<Identity>,
    tls: Option<TlsAcceptor>,
    /// Routes whose self-hosted model failed its check (`[routes.model_check]`).
    pub(crate) unverified: Unverified,
}

impl Runtime {
    /// Whether neither identity nor policies are configured: everything is allowed.
    pub fn open_mode(&self) -> bool {
        self.identity.is_none() && self.config.policy.is_none()
    }

    /// Refuses requests for `route` when its model failed its check (503 `model_unverified`).
    pub(crate) fn routable(
        &self,
        route: &config::Route,
        model: &str,
    ) -> Result<(), crate::error::GatewayError> {
        self.unverified.ensure_routable(route, model)
    }

    /// The live upstreams of `route`, in failover order.
    pub(crate) fn upstreams_of(&self, route: &config::Route) -> Vec<&UpstreamState> {
        route
            .upstreams
            .iter()
            .filter_map(|&i| self.upstreams.get(i))
            .collect()
    }

    /// Builds clients, TLS state and the key store for `config`, and checks the routes'
    /// self-hosted models with `checker` (without one, every `model_check` fails closed).
    /// `previous` is the runtime a reload replaces (see [`Identity::open`]).
    pub(crate) async fn build(
        config: Config,
        checker: Option<Arc<dyn ModelCheck>>,
        metrics: &Metrics,
        previous: Option<&Self>,
    ) -> Result<Self, StartError> {
        let previous_identity = previous.and_then(|p| p.identity.as_ref());
        let identity = match &config.identity {
            Some(i) => Some(
                Identity::open(i, previous_identity)
                    .await
                    .map_err(|e| StartError::Identity(e.to_string()))?,
            ),
            None => None,
        };
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                UpstreamState::new(u.clone()).map_err(|e| StartError::Upstream(u.name.clone(), e))
            })
            .collect::<Result<_, _>>()?;
        let tls = config
            .server
            .tls
            .as_ref()
            .map(|t| crate::tls::acceptor(t).map_err(StartError::Tls))
            .transpose()?;
        let unverified = crate::model_check::check_routes(&config, checker, metrics).await?;
        Ok(Self {
            config,
            upstreams,
            identity,
            tls,
            unverified,
        })
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) metrics: Metrics,
    pub(crate) admission: Arc<Semaphore>,
    /// Failed-authentication counts; they survive reloads.
    pub(crate) throttle: Throttle,
    /// The guard engine, compiled once when the first config that uses it is loaded (about
    /// 15 MB and 100 ms; a gateway whose routes all run with `guard = "off"` never pays it).
    guard: std::sync::OnceLock<aigis_guard::Guard>,
    /// `[guard] cache` at start: the guard's findings cache is sized once, like the vault.
    guard_cache: usize,
    /// Limit counters kept in this process, and the fleet's store when configured; they
    /// survive reloads.
    pub(crate) limiter: crate::admit::Limiter,
    /// Pseudonyms issued to callers; sized by the config at startup.
    pub(crate) vault: aigis_guard::Vault,
    /// The config file and `--strict`, for reloads.
    source: Option<(PathBuf, bool)>,
    /// The audit ledger (`[ledger]`), opened at start; its section is not reloaded.
    pub(crate) ledger: Option<crate::record::Recorder>,
    /// Verifies routes' self-hosted models at start and reload.
    model_check: Option<Arc<dyn ModelCheck>>,
}

impl Shared {
    /// The guard engine (compiled on first use).
    pub(crate) fn guard(&self) -> &aigis_guard::Guard {
        self.guard
            .get_or_init(|| aigis_guard::Guard::new().with_cache(self.guard_cache))
    }

    /// The metrics in Prometheus text format, the guard cache's brought up to date first.
    pub(crate) fn metrics_text(&self) -> String {
        if let Some(guard) = self.guard.get() {
            self.metrics.guard_cache(guard.cache_stats());
        }
        self.metrics.encode()
    }

    /// Compiles the guard before `config` serves, when any route inspects requests.
    fn prepare_guard(&self, config: &Config) {
        if config.routes.iter().any(|r| r.guard.is_some()) {
            self.guard();
        }
    }

    /// Re-reads the config file and swaps it in atomically; on any error the running
    /// configuration stays in force. `principal` asked for it (none for a signal).
    pub(crate) async fn reload(
        &self,
        by: Option<(&str, std::net::IpAddr)>,
    ) -> Result<Vec<Diagnostic>, StartError> {
        let result = self.try_reload().await;
        self.reloaded(result, by).await
    }

    /// Records a reload's outcome: its audit event, metric and log line.
    async fn reloaded(
        &self,
        result: Result<Vec<Diagnostic>, StartError>,
        by: Option<(&str, std::net::IpAddr)>,
    ) -> Result<Vec<Diagnostic>, StartError> {
        let label = if result.is_ok() { "ok" } else { "rejected" };
        if let Some(ledger) = &self.ledger {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let status = if result.is_ok() { 200 } else { 422 };
            let (principal, ip) = (by.map(|b| b.0), by.and_then(|b| ledger.client_ip(b.1)));
            let event = crate::record::admin_event(
                &id,
                principal,
                ip.as_deref(),
                "config.reload",
                None,
                status,
            );
            ledger.append(event).await;
        }
        self.metrics
            .reloads
            .get_or_create(&ReloadLabels { result: label })
            .inc();
        match &result {
            Ok(_) => tracing::info!("configuration reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "reload rejected; the previous configuration keeps serving");
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<Vec<Diagnostic>, StartError> {
        let (path, strict) = self.source.as_ref().ok_or(StartError::NoConfigFile)?;
        let loaded = config::load(path, *strict)?;
        let old = self.runtime.load();
        let (new_server, old_server) = (&loaded.config.server, &old.config.server);
        if new_server.listen != old_server.listen
            || new_server.admin_listen != old_server.admin_listen
            || new_server.max_concurrent != old_server.max_concurrent
        {
            tracing::warn!(
                "listen, admin_listen and max_concurrent changes take effect at the next restart"
            );
        }
        let sized_at_start = |g: &config::GuardConfig| (g.cache, g.vault_capacity, g.vault_ttl);
        if sized_at_start(&loaded.config.guard) != sized_at_start(&old.config.guard) {
            tracing::warn!(
                "guard.cache, guard.vault.capacity and guard.vault.ttl changes take effect at the \
                 next restart"
            );
        }
        let runtime = Runtime::build(
            loaded.config,
            self.model_check.clone(),
            &self.metrics,
            Some(&old),
        )
        .await?;
        announce_mode(&runtime);
        self.prepare_guard(&runtime.config);
        self.runtime.store(Arc::new(runtime));
        Ok(loaded.warnings)
    }
}

/// Says loudly, at start and at every reload, when the gateway lets callers through unchecked.
fn announce_mode(runtime: &Runtime) {
    if runtime.open_mode() {
        tracing::warn!(
            target: "aigis::security",
            "OPEN MODE: no [identity] and no [policy] configured; every caller is anonymous and allowed"
        );
    } else if runtime.config.policy.is_none() {
        tracing::warn!(target: "aigis::security", "no [policy] configured: every request is denied (default deny)");
    }
}

/// Why the gateway could not start (or a reload could not be applied).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding a listener failed.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The TLS files are unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// An upstream's client could not be built.
    #[error("upstream `{0}`: {1}")]
    Upstream(String, String),
    /// The key store or pepper cannot be opened.
    #[error("identity: {0}")]
    Identity(String),
    /// The audit ledger's store or key cannot be opened.
    #[error("ledger: {0}")]
    Ledger(String),
    /// The new config file is invalid (reload only).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A route's model failed its check under `on_failure = "refuse-start"`.
    #[error("route `{route}`: the model check failed: {reason}")]
    ModelCheck {
        /// The route.
        route: String,
        /// Why (from the [`ModelCheck`]).
        reason: String,
    },
    /// Reload was asked of a gateway started without a config file.
    #[error("this gateway was not started from a config file")]
    NoConfigFile,
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    public_task: JoinHandle<()>,
    admin_task: JoinHandle<()>,
}

impl Gateway {
    /// Binds both listeners and starts serving. `source` (path, strict) enables [`Self::reload`].
    /// Routes with a `model_check` fail closed: use [`Self::start_with`] to check them.
    pub async fn start(
        config: Config,
        source: Option<(PathBuf, bool)>,
    ) -> Result<Self, StartError> {
        Self::start_with(config, source, None).await
    }

    /// Like [`Self::start`], with `model_check` verifying routes' self-hosted models
    /// (`[routes.model_check]`) now and at every reload.
    pub async fn start_with(
        config: Config,
        source: Option<(PathBuf, bool)>,
        model_check: Option<Arc<dyn ModelCheck>>,
    ) -> Result<Self, StartError> {
        let server = config.server.clone();
        let metrics = Metrics::default();
        let runtime = Runtime::build(config, model_check.clone(), &metrics, None).await?;
        announce_mode(&runtime);
        bootstrap_admin_key(&runtime).await?;
        let public = TcpListener::bind(server.listen)
            .await
            .map_err(|e| StartError::Bind(server.listen, e))?;
        let admin = TcpListener::bind(server.admin_listen)
            .await
            .map_err(|e| StartError::Bind(server.admin_listen, e))?;
        let (public_addr, admin_addr) = (
            local(&public, server.listen),
            local(&admin, server.admin_listen),
        );
        let ledger = match &runtime.config.ledger {
            Some(l) => Some(
                crate::record::Recorder::open(l)
                    .await
                    .map_err(StartError::Ledger)?,
            ),
            None => None,
        };
        let vault = aigis_guard::Vault::new(
            runtime.config.guard.vault_capacity,
            runtime.config.guard.vault_ttl,
        );
        let guard_cache = runtime.config.guard.cache;
        let shared = Arc::new(Shared {
            guard: std::sync::OnceLock::new(),
            guard_cache,
            vault,
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
            admission: Arc::new(Semaphore::new(server.max_concurrent)),
            throttle: Throttle::default(),
            limiter: crate::admit::Limiter::default(),
            source,
            ledger,
            model_check,
        });
        shared.prepare_guard(&shared.runtime.load().config);
        let (stop, stop_rx) = watch::channel(false);
        let public_task = tokio::spawn(serve_public(public, shared.clone(), stop_rx.clone()));
        let admin_task = tokio::spawn(admin::serve(admin, shared.clone(), stop_rx));
        tracing::info!(%public_addr, %admin_addr, tls = server.tls.is_some(), "aigis gateway listening");
        Ok(Self {
            shared,
            public_addr,
            admin_addr,
            stop,
            public_task,
            admin_task,
        })
    }

    /// The public API address (useful with port 0).
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.shared.metrics_text()
    }

    /// Re-reads the config file and swaps it in atomically. On any error the running
    /// configuration stays in force. Listener addresses and `max_concurrent` need a restart.
    pub async fn reload(&self) -> Result<Vec<Diagnostic>, StartError> {
        self.shared.reload(None).await
    }

    /// Stops accepting, then waits up to `shutdown_grace` for in-flight requests and streams.
    pub async fn shutdown(self) {
        let grace = self.shared.runtime.load().config.server.shutdown_grace;
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace + Duration::from_millis(100), self.public_task)
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; remaining connections dropped");
        }
        self.admin_task.abort();
        if let Some(ledger) = &self.shared.ledger {
            ledger.close().await;
        }
    }

    /// Serves until SIGTERM or SIGINT (graceful shutdown); SIGHUP reloads the config.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                // A reload that waits on a slow store or IdP must not hold off a stop: a
                // stop signal abandons it, leaving the old configuration in place (its last
                // step swaps the runtime in, with no wait after it). One that completed is
                // recorded whatever comes next.
                _ = hup.recv() => {
                    let result = tokio::select! {
                        r = self.shared.try_reload() => r,
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                    };
                    let _ = self.shared.reloaded(result, None).await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        tracing::info!("shutting down: draining in-flight requests");
        self.shutdown().await;
        Ok(())
    }
}

fn local(l: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(fallback)
}

async fn serve_public(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    // A timer that is always pending. hyper arms a header-read timeout for every request and
    // drops it once the head is parsed; when no other timer is in tokio's wheel, each of those
    // registrations lies before the driver's next wake-up and makes the driver unpark itself
    // (an eventfd write and an extra epoll round per request). With this tick pending, the
    // next wake-up is at most a second away and the later header deadlines register quietly.
    let mut anchor = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = anchor.tick() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let shared = shared.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move { connection(tcp, peer, shared, watcher).await });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let grace = shared.runtime.load().config.server.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
}

async fn connection(
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    shared: Arc<Shared>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let runtime = shared.runtime.load_full();
    let server = &runtime.config.server;
    if server.proxy_protocol && crate::forwarded::is_trusted(&server.trusted_proxies, peer.ip()) {
        match crate::proxy_protocol::read(&mut tcp).await {
            Ok(crate::proxy_protocol::Origin::Client(client)) => peer = client,
            Ok(crate::proxy_protocol::Origin::Proxy) => {}
            Err(e) => {
                return tracing::warn!(target: "aigis::security", proxy = %peer, error = %e, "connection from a trusted proxy refused");
            }
        }
    }
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let max_header = runtime.config.server.limits.max_header;
    builder
        .http1()
        .max_buf_size(max_header.max(8192) + 8192)
        .timer(hyper_util::rt::TokioTimer::new());
    builder
        .http2()
        .max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX))
        .timer(hyper_util::rt::TokioTimer::new());
    let service = |peer: Peer| {
        let shared = shared.clone();
        service_fn(move |req| {
            let (shared, peer) = (shared.clone(), peer.clone());
            async move { Ok::<_, std::convert::Infallible>(pipeline::handle(shared, peer, req).await) }
        })
    };
    let client_ip = shared.ledger.as_ref().and_then(|l| l.client_ip(peer.ip()));
    let result = match &runtime.tls {
        None => {
            let service = service(Peer {
                addr: peer,
                client_cert: None,
                tls_group: None,
                client_ip,
            });
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(tcp), service)
                        .into_owned(),
                )
                .await
        }
        Some(acceptor) => {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                };
            let (_, conn) = tls.get_ref();
            let group = conn
                .negotiated_key_exchange_group()
                .map_or_else(|| "none".into(), |g| format!("{:?}", g.name()));
            let version = conn
                .protocol_version()
                .map_or_else(|| "none".into(), |v| format!("{v:?}"));
            shared
                .metrics
                .tls
                .get_or_create(&TlsLabels {
                    group: group.clone(),
                    version,
                })
                .inc();
            let client_cert = conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| crate::identify::mtls::principal(leaf))
                .map(Arc::new);
            let tls_group = conn
                .negotiated_key_exchange_group()
                .map(|_| Arc::<str>::from(group.as_str()));
            let service = service(Peer {
                addr: peer,
                client_cert,
                tls_group,
                client_ip,
            });
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(tls), service)
                        .into_owned(),
                )
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// On a first start with `bootstrap_admin = true` and an empty store, creates an admin key and
/// prints it once on stderr. It is never logged or shown again.
async fn bootstrap_admin_key(runtime: &Runtime) -> Result<(), StartError> {
    let wanted = runtime
        .config
        .identity
        .as_ref()
        .and_then(|i| i.api_keys.as_ref())
        .is_some_and(|k| k.bootstrap_admin);
    let Some(keys) = runtime.identity.as_ref().and_then(|i| i.api_keys.as_ref()) else {
        return Ok(());
    };
    if !wanted
        || !keys
            .store()
            .list()
            .await
            .map_err(|e| StartError::Identity(e.to_string()))?
            .is_empty()
    {
        return Ok(());
    }
    let spec = KeySpec {
        name: "admin".into(),
        kind: "user".into(),
        roles: vec!["admin".into()],
        ..KeySpec::default()
    };
    let key = keys
        .create(spec)
        .await
        .map_err(|e| StartError::Identity(e.to_string()))?;
    tracing::info!(key_prefix = %key.record.prefix, "created the first admin key");
    eprintln!(
        "\n  aigis: created the first admin key. It is shown once; store it now:\n\n    {}\n\n  Use it as `Authorization: Bearer <key>`. Create more with `aigis keys create`.\n",
        key.secret
    );
    Ok(())
}
