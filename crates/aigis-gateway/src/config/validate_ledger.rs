//! Validation of `[ledger]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aigis_ledger::content::Recipient;
use aigis_ledger::content::{ContentStore, DEFAULT_TENANT};

use super::{Seg, Validator, key, raw};
use crate::config::ledger::{ClientIp, LedgerConfig, LedgerOnError, LedgerStore};
use crate::config::{Level, Route};

/// Default spool bound.
const DEFAULT_SPOOL_MAX: usize = 1 << 30;
/// Default `commit_interval`. Longer than the ledger's own default (2 ms, for appends that wait
/// for their acknowledgement): the gateway does not wait for its records, and on a virtual
/// machine every `fdatasync` costs CPU that requests then lack (at 2 ms the gateway served
/// 0.69–0.76× its unrecorded throughput, at 5 ms 0.83–0.87×; at 10 ms each request costs about
/// 2 CPU-µs less than at 5 ms; BENCHMARKS.md). A record waits at most this long (plus the sync)
/// before it is durable.
const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(10);
/// Shortest and longest `store_timeout` accepted.
const MIN_STORE_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_STORE_TIMEOUT: Duration = Duration::from_mins(10);
/// Longest `commit_interval` accepted.
const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// A file beside a file or SQLite store (`PATH.suffix`), else beside the ledger key
/// (`KEY.suffix`).
fn beside(store: &LedgerStore, signing_key: &Path, suffix: &str) -> PathBuf {
    let path: &Path = match store {
        LedgerStore::File(p) | LedgerStore::Sqlite(p) => p,
        LedgerStore::Postgres(_) => signing_key,
    };
    let mut s = path.to_path_buf().into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl Validator<'_> {
    /// `[ledger] client_ip`: `full` (default), `network` or `off`.
    fn client_ip(&mut self, at: &[Seg], value: Option<&str>) -> Option<ClientIp> {
        match value {
            None | Some("full") => Some(ClientIp::Full),
            Some("network") => Some(ClientIp::Network),
            Some("off") => Some(ClientIp::Off),
            Some(other) => {
                self.error(
                    at,
                    format!("unknown value `{other}`"),
                    Some("\"full\" (default), \"network\" (/24, /48) or \"off\"".into()),
                );
                None
            }
        }
    }

    pub(super) fn ledger(
        &mut self,
        l: raw::Ledger,
        cluster: Option<&raw::Cluster>,
    ) -> Option<LedgerConfig> {
        let at = [Seg::Key("ledger".into())];
        let store_text = match (l.store, cluster.and_then(|c| c.postgres.clone())) {
            (Some(s), _) => s,
            (None, Some(pg)) => pg,
            (None, None) => {
                self.error(
                    &key(&at, "store"),
                    "missing `store`",
                    Some(
                        "store = \"file:ledger\" (or sqlite:ledger.db; postgres://… for a fleet)"
                            .into(),
                    ),
                );
                return None;
            }
        };
        let store = self.ledger_store(store_text, cluster.is_some())?;
        let signing_key = match l.signing_key.strip_prefix("file:") {
            Some(path) => {
                let path = self.base.join(path);
                if !path.exists() {
                    self.push(
                        Level::Warning,
                        &key(&at, "signing_key"),
                        format!("`{}` does not exist: the gateway creates it at first start", path.display()),
                        Some("create it explicitly with `aigis audit init --key PATH --origin NAME` to choose the log's name".into()),
                    );
                }
                Some(path)
            }
            None => {
                self.error(
                    &key(&at, "signing_key"),
                    "the ledger key must be a `file:` reference",
                    Some("create it with `aigis audit init --key ledger.key`, then signing_key = \"file:ledger.key\"".into()),
                );
                None
            }
        };
        let capture_default = self.content_mode(&key(&at, "content"), l.content.as_deref());
        let on_store_error = match l.on_store_error.as_deref() {
            None | Some("spool") => LedgerOnError::Spool,
            Some("fail-closed") => LedgerOnError::FailClosed,
            Some(other) => {
                self.error(
                    &key(&at, "on_store_error"),
                    format!("unknown value `{other}`"),
                    Some("\"spool\" (default) or \"fail-closed\"".into()),
                );
                return None;
            }
        };
        let client_ip = self.client_ip(&key(&at, "client_ip"), l.client_ip.as_deref())?;
        let (checkpoint_every, commit_interval) = self.ledger_intervals(
            &at,
            l.checkpoint_every.as_deref(),
            l.commit_interval.as_deref(),
        )?;
        let store_timeout = self.store_timeout(&at, l.store_timeout.as_deref())?;
        let spool_max = self.size(
            &key(&at, "spool_max"),
            l.spool_max.as_deref(),
            DEFAULT_SPOOL_MAX,
        )?;
        let signing_key = signing_key?;
        let capture = match l.capture {
            Some(c) => Some(Arc::new(self.capture(c, &store, &signing_key)?)),
            None => None,
        };
        if capture_default == Some(true) && capture.is_none() {
            self.error(
                &key(&at, "content"),
                "content = \"encrypted\" needs [ledger.capture] with the tenants' age recipients",
                Some("[ledger.capture] recipients = { default = [\"age1…\"] }".into()),
            );
            return None;
        }
        let spool = beside(&store, &signing_key, ".spool");
        Some(LedgerConfig {
            store,
            signing_key,
            checkpoint_every,
            commit_interval,
            store_timeout,
            on_store_error,
            client_ip,
            spool_max: spool_max as u64,
            spool,
            capture_default: capture_default == Some(true),
            capture,
        })
    }

    fn ledger_store(&mut self, store_text: String, fleet: bool) -> Option<LedgerStore> {
        let at = [Seg::Key("ledger".into())];
        let embedded = store_text
            .strip_prefix("file:")
            .map(|p| (p, true))
            .or_else(|| store_text.strip_prefix("sqlite:").map(|p| (p, false)));
        let store = if let Some((path, file)) = embedded {
            let scheme = if file { "file:" } else { "sqlite:" };
            if fleet {
                self.error(
                    &key(&at, "store"),
                    format!("a {scheme} ledger cannot be shared by a fleet ([cluster] is set)"),
                    Some("use store = \"postgres://…\" so every gateway appends to one log".into()),
                );
                return None;
            }
            if path.is_empty() {
                self.error(&key(&at, "store"), format!("`{scheme}` needs a path"), None);
                return None;
            }
            if file {
                LedgerStore::File(self.base.join(path))
            } else {
                LedgerStore::Sqlite(self.base.join(path))
            }
        } else if store_text.starts_with("postgres://") || store_text.starts_with("postgresql://") {
            LedgerStore::Postgres(store_text)
        } else {
            self.error(
                &key(&at, "store"),
                "unsupported ledger store",
                Some("use \"file:DIR\", \"sqlite:PATH\" or \"postgres://USER@HOST/DB\"".into()),
            );
            return None;
        };
        Some(store)
    }

    /// `content = "hash" | "encrypted"` (of `[ledger]` or a route); `None` when absent or
    /// invalid (reported).
    pub(super) fn content_mode(&mut self, at: &[Seg], mode: Option<&str>) -> Option<bool> {
        match mode? {
            "hash" => Some(false),
            "encrypted" => Some(true),
            other => {
                self.error(
                    at,
                    format!("unknown content mode `{other}`"),
                    Some("\"hash\" (keyed digests only, the default) or \"encrypted\" (sealed per tenant, [ledger.capture])".into()),
                );
                None
            }
        }
    }

    /// `[ledger.capture]`: the content folder and every tenant's recipients, each checked now.
    fn capture(
        &mut self,
        c: raw::LedgerCapture,
        store: &LedgerStore,
        signing_key: &Path,
    ) -> Option<ContentStore> {
        let at = [Seg::Key("ledger".into()), Seg::Key("capture".into())];
        let dir = match c.dir {
            Some(d) if d.is_empty() => {
                self.error(&key(&at, "dir"), "must not be empty", None);
                return None;
            }
            Some(d) => self.base.join(d),
            None => beside(store, signing_key, ".content"),
        };
        if c.recipients.is_empty() {
            self.error(
                &key(&at, "recipients"),
                "names no tenant: content could not be sealed for anyone",
                Some(format!("recipients = {{ {DEFAULT_TENANT} = [\"age1…\"], team-a = [\"file:team-a.recipients\"] }}")),
            );
            return None;
        }
        let mut recipients = BTreeMap::new();
        let mut ok = true;
        for (tenant, list) in c.recipients {
            let at = key(&key(&at, "recipients"), &tenant);
            match self.tenant_recipients(&at, &list) {
                Some(r) => {
                    recipients.insert(tenant, r);
                }
                None => ok = false,
            }
        }
        ok.then(|| ContentStore::new(dir, recipients))
    }

    /// One tenant's list: `age1…` / `age1pq1…` recipients or `file:PATH` recipients files.
    fn tenant_recipients(&mut self, at: &[Seg], list: &[String]) -> Option<Vec<Recipient>> {
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let mut here = at.to_vec();
            here.push(Seg::Index(i));
            let parsed = match item.strip_prefix("file:") {
                Some(path) => {
                    let path = self.base.join(path);
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            format!("cannot read recipients file `{}`: {e}", path.display())
                        })
                        .and_then(|text| {
                            Recipient::parse_file(&text)
                                .map_err(|e| format!("recipients file `{}`: {e}", path.display()))
                        })
                }
                None => Recipient::parse(item)
                    .map(|r| vec![r])
                    .map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(r) => out.extend(r),
                Err(e) => {
                    self.error(&here, e, Some("an age1… or age1pq1… recipient (`aigis keygen`), or file:PATH with one per line".into()));
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.error(
                at,
                "no recipient: this tenant's content could not be sealed",
                None,
            );
            return None;
        }
        if out.iter().any(Recipient::is_post_quantum) && !out.iter().all(Recipient::is_post_quantum)
        {
            self.error(
                at,
                "mixes post-quantum (age1pq1…) and classical recipients: the content would only be as strong as the classical key",
                Some("use only age1pq1… recipients for this tenant (or only age1…)".into()),
            );
            return None;
        }
        Some(out)
    }

    /// A route with `content = "encrypted"` needs `[ledger]` with `[ledger.capture]`.
    pub(super) fn route_capture(
        &mut self,
        routes: Option<&[Route]>,
        ledger: Option<&LedgerConfig>,
    ) {
        let sealed = ledger.is_some_and(|l| l.capture.is_some());
        for (i, route) in routes.unwrap_or_default().iter().enumerate() {
            if route.content == Some(true) && !sealed {
                let at = [Seg::Key("routes".into()), Seg::Index(i)];
                self.error(
                    &key(&at, "content"),
                    "content = \"encrypted\" needs [ledger] with [ledger.capture] (the tenants' age recipients); content is never stored unencrypted",
                    Some("[ledger.capture] recipients = { default = [\"age1…\"] }".into()),
                );
            }
        }
    }
}

impl Validator<'_> {
    /// `checkpoint_every` (more than zero) and `commit_interval` (at most 1 s).
    fn ledger_intervals(
        &mut self,
        at: &[Seg],
        checkpoint_every: Option<&str>,
        commit_interval: Option<&str>,
    ) -> Option<(Duration, Duration)> {
        let checkpoint_every = self.duration(
            &key(at, "checkpoint_every"),
            checkpoint_every,
            Duration::from_secs(1),
        )?;
        if checkpoint_every.is_zero() {
            self.error(
                &key(at, "checkpoint_every"),
                "must be greater than zero",
                None,
            );
            return None;
        }
        let commit_interval = self.duration(
            &key(at, "commit_interval"),
            commit_interval,
            DEFAULT_COMMIT_INTERVAL,
        )?;
        if commit_interval > MAX_COMMIT_INTERVAL {
            self.error(
                &key(at, "commit_interval"),
                "must be at most 1s (records wait this long in memory before they are durable)",
                Some("\"5ms\" (default)".into()),
            );
            return None;
        }
        Some((checkpoint_every, commit_interval))
    }

    /// `store_timeout`: 1 s to 10 min. Shorter would report a healthy disk's occasional slow
    /// `fdatasync` (seen taking a second on a VM) as an outage.
    fn store_timeout(&mut self, at: &[Seg], text: Option<&str>) -> Option<Duration> {
        let path = key(at, "store_timeout");
        let timeout = self.duration(&path, text, aigis_ledger::writer::DEFAULT_STALL)?;
        if !(MIN_STORE_TIMEOUT..=MAX_STORE_TIMEOUT).contains(&timeout) {
            self.error(
                &path,
                "must be from 1s to 10m",
                Some("\"10s\" (default)".into()),
            );
            return None;
        }
        Some(timeout)
    }
}
