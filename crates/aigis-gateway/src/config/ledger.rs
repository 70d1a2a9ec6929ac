//! `[ledger]`: the tamper-evident audit ledger every request and admin action is recorded in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerStore {
    /// `file:DIR`: the append-only file set (resolved from the config file's folder).
    File(PathBuf),
    /// `sqlite:PATH` (resolved from the config file's folder).
    Sqlite(PathBuf),
    /// `postgres://…`: shared by a fleet.
    Postgres(String),
}

/// What to do when the store cannot take a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOnError {
    /// Write to a local durable spool (bounded by `spool_max`), drain it later; a full spool
    /// fails closed.
    Spool,
    /// Refuse traffic (503) until the store is back.
    FailClosed,
}

/// How much of the client's address events record (`[ledger] client_ip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIp {
    /// The whole address.
    Full,
    /// Its network only: an IPv4 /24 or IPv6 /48, the host bits zeroed.
    Network,
    /// None.
    Off,
}

impl ClientIp {
    /// The text an event records for `ip`.
    pub fn text(self, ip: IpAddr) -> Option<Arc<str>> {
        let ip = match (self, ip.to_canonical()) {
            (Self::Off, _) => return None,
            (Self::Full, ip) => ip,
            (Self::Network, IpAddr::V4(v4)) => Ipv4Addr::from(u32::from(v4) & !0xff).into(),
            (Self::Network, IpAddr::V6(v6)) => {
                Ipv6Addr::from(u128::from(v6) & !((1u128 << 80) - 1)).into()
            }
        };
        Some(Arc::from(ip.to_string()))
    }
}

/// `[ledger]`
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The store.
    pub store: LedgerStore,
    /// The ledger key file (`aigis audit init` creates it).
    pub signing_key: PathBuf,
    /// How often a checkpoint is signed while the log grows.
    pub checkpoint_every: Duration,
    /// Shortest time between two batch commits (group commit): each commit is one `write` and
    /// one `fdatasync`, so a longer interval costs less CPU and disk I/O per request.
    pub commit_interval: Duration,
    /// How long the writer may wait on its store (a commit, a spool write, a probe) before the
    /// ledger reports itself unhealthy and the gateway refuses traffic until the store answers.
    pub store_timeout: Duration,
    /// What happens when the store fails.
    pub on_store_error: LedgerOnError,
    /// How much of the client's address events record.
    pub client_ip: ClientIp,
    /// Largest spool, in bytes.
    pub spool_max: u64,
    /// The spool file: beside a file or SQLite store (`PATH.spool`), else beside the key file.
    pub spool: PathBuf,
    /// `content = "encrypted"`: routes without their own `content` capture content.
    pub capture_default: bool,
    /// `[ledger.capture]`: where captured content is sealed and to whom, per tenant.
    pub capture: Option<Arc<aigis_ledger::content::ContentStore>>,
}

impl LedgerConfig {
    /// Whether requests on a route whose own setting is `route` capture encrypted content.
    pub fn captures(&self, route: Option<bool>) -> bool {
        route.unwrap_or(self.capture_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_are_kept_masked_or_dropped() {
        // An IPv4 client on a dual-stack listener (`::ffff:…`) is recorded as IPv4.
        for (mode, ip, recorded) in [
            (ClientIp::Full, "203.0.113.77", Some("203.0.113.77")),
            (ClientIp::Network, "203.0.113.77", Some("203.0.113.0")),
            (
                ClientIp::Network,
                "2001:db8:aa:bb:cc::1",
                Some("2001:db8:aa::"),
            ),
            (ClientIp::Full, "::ffff:198.51.100.9", Some("198.51.100.9")),
            (
                ClientIp::Network,
                "::ffff:198.51.100.9",
                Some("198.51.100.0"),
            ),
            (ClientIp::Off, "203.0.113.77", None),
        ] {
            let text = mode.text(ip.parse().unwrap());
            assert_eq!(text.as_deref(), recorded, "{mode:?} {ip}");
        }
    }
}
