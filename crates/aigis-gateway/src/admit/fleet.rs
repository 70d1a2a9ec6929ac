//! Limit counters in Redis, shared by every gateway of a fleet: each batch is one call of an
//! atomic Lua script (`limits.lua`, loaded once and called by its SHA) that uses the Redis
//! server's clock, so gateways with skewed clocks still agree.
//!
//! A first tier in front of Redis remembers counters that Redis has reported used up (not
//! even one unit fits) and refuses them locally until Redis said they would refill; it never
//! refuses anything Redis has not refused first.
//!
//! Settlements (refunds of unused reservations, charges above them) are group-committed:
//! while one settlement call is in flight, later ones gather per counter, amounts summed, and
//! go in the next call. Under load a gateway makes far fewer than one settlement round trip
//! per request, yet no settlement waits longer than the call before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::oneshot;

use super::cell::{Kind, Reading, Refused};
use super::store::{Charge, Op, StoreError, Verdict};
use crate::config::RedisStore;

/// How long a concurrency slot lives in Redis if its gateway dies without releasing it.
pub(crate) const CONCURRENCY_LEASE: Duration = Duration::from_mins(30);
/// After a failed connection attempt, requests fail fast for this long instead of each
/// waiting for its own connection timeout.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
/// Most entries the first tier remembers.
const MAX_EXHAUSTED: usize = 100_000;
/// Most counters one settlement script call carries (the rest go in further pipelined calls).
const MAX_KEYS_PER_CALL: usize = 64;

/// A Redis-backed limit store.
pub(crate) struct Fleet {
    config: RedisStore,
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    retry_at: Mutex<Option<Instant>>,
    exhausted: Mutex<HashMap<String, Instant>>,
    script: redis::Script,
    settling: Mutex<Settling>,
    /// Script calls sent (every op), for tests and diagnostics.
    calls: AtomicU64,
}

/// What the next settlement call carries, and who waits for it.
#[derive(Default)]
struct Settling {
    refund: HashMap<String, Charge>,
    force: HashMap<String, Charge>,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    /// A caller is sending calls and will take whatever gathers meanwhile.
    sending: bool,
}

impl Settling {
    fn add(&mut self, op: Op, charges: Vec<Charge>) {
        let pending = if op == Op::Refund {
            &mut self.refund
        } else {
            &mut self.force
        };
        for c in charges {
            match pending.get_mut(&c.key) {
                Some(p) => {
                    p.amount = p.amount.saturating_add(c.amount);
                    p.kind = c.kind;
                }
                None => {
                    pending.insert(c.key.clone(), c);
                }
            }
        }
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// A store for `config`; connects on first use (a gateway starts while Redis is down).
    pub(crate) fn new(config: RedisStore) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        Ok(Self {
            config,
            client,
            conn: tokio::sync::Mutex::new(None),
            retry_at: Mutex::new(None),
            exhausted: Mutex::new(HashMap::new()),
            script: redis::Script::new(include_str!("limits.lua")),
            settling: Mutex::default(),
            calls: AtomicU64::new(0),
        })
    }

    /// Script calls sent so far.
    #[cfg(test)]
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The configuration this store was built from.
    pub(crate) fn config(&self) -> &RedisStore {
        &self.config
    }

    /// Applies `charges` atomically in Redis.
    pub(crate) async fn apply(
        &self,
        op: Op,
        ticket: &str,
        charges: &[Charge],
    ) -> Result<Verdict, StoreError> {
        if op == Op::Check
            && let Some(v) = self.refused_locally(charges)
        {
            return Ok(v);
        }
        let mut conn = self.connection().await?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(op_name(op)).arg(ticket);
        for c in charges {
            invocation.key(format!("{}:{}", self.config.key_prefix, c.key));
            let (kind, limit, param) = match c.kind {
                Kind::Rate { limit, period_us } => ("r", limit, period_us),
                Kind::Window { limit, ends_us } => ("w", limit, ends_us),
                Kind::Concurrency { limit } => (
                    "c",
                    limit,
                    u64::try_from(CONCURRENCY_LEASE.as_micros()).unwrap_or(u64::MAX),
                ),
            };
            invocation.arg(kind).arg(limit).arg(param).arg(c.amount);
        }
        let reply =
            tokio::time::timeout(self.config.timeout, invocation.invoke_async(&mut conn)).await;
        let reply: Vec<i64> = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) if !(e.is_timeout() || e.is_io_error() || e.is_connection_dropped()) => {
                return Err(StoreError(format!("Redis: {e}")));
            }
            // The manager reconnects on errors it takes as fatal, not on a call that went
            // unanswered: a half-open connection (a failover, a NAT that forgot it) would fail
            // every call until the kernel gives up on it, after minutes. The next call opens a
            // new one.
            failed => {
                *self.conn.lock().await = None;
                return Err(StoreError(match failed {
                    Ok(Err(e)) => format!("Redis: {e}"),
                    _ => format!("Redis did not answer within {:?}", self.config.timeout),
                }));
            }
        };
        let verdict = parse_reply(&reply, charges.len())?;
        if let Verdict::Refused { index, refused } = &verdict
            && refused.exhausted
            && let Some(c) = charges.get(*index).filter(|c| c.monotone)
        {
            self.remember_exhausted(&c.key, refused.retry_us);
        }
        Ok(verdict)
    }

    /// Settles `charges` (`op` is [`Op::Refund`] or [`Op::Force`]; concurrency slots, which
    /// name their ticket, go alone): joins the next group call and returns once it is applied.
    pub(crate) async fn settle(
        self: &Arc<Self>,
        op: Op,
        ticket: &str,
        charges: Vec<Charge>,
    ) -> Result<(), StoreError> {
        let groupable = matches!(op, Op::Refund | Op::Force)
            && charges
                .iter()
                .all(|c| !matches!(c.kind, Kind::Concurrency { .. }));
        if !groupable {
            return self.apply(op, ticket, &charges).await.map(|_| ());
        }
        let (tx, rx) = oneshot::channel();
        let send = {
            let mut s = self.lock_settling()?;
            s.add(op, charges);
            s.waiters.push(tx);
            !std::mem::replace(&mut s.sending, true)
        };
        if send {
            tokio::spawn(self.clone().send_settlements());
        }
        match rx.await {
            Ok(result) => result.map_err(StoreError),
            Err(_) => Err(StoreError("the settlement call was abandoned".into())),
        }
    }

    fn lock_settling(&self) -> Result<std::sync::MutexGuard<'_, Settling>, StoreError> {
        self.settling
            .lock()
            .map_err(|_| StoreError("poisoned".into()))
    }

    /// Sends what has gathered, again and again, until nothing has gathered during a call.
    async fn send_settlements(self: Arc<Self>) {
        loop {
            let taken = self.lock_settling().map(|mut s| {
                if s.waiters.is_empty() {
                    s.sending = false;
                }
                (
                    std::mem::take(&mut s.refund),
                    std::mem::take(&mut s.force),
                    std::mem::take(&mut s.waiters),
                )
            });
            let Ok((refund, force, waiters)) = taken else {
                return;
            };
            if waiters.is_empty() {
                return;
            }
            let refund: Vec<Charge> = refund.into_values().collect();
            let force: Vec<Charge> = force.into_values().collect();
            let calls = refund
                .chunks(MAX_KEYS_PER_CALL)
                .map(|c| (Op::Refund, c))
                .chain(force.chunks(MAX_KEYS_PER_CALL).map(|c| (Op::Force, c)))
                .map(|(op, c)| self.apply(op, "settle", c));
            let result = futures_util::future::join_all(calls)
                .await
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), |e| Err(e.0));
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    fn refused_locally(&self, charges: &[Charge]) -> Option<Verdict> {
        let mut exhausted = self.exhausted.lock().ok()?;
        let now = Instant::now();
        for (index, c) in charges.iter().enumerate() {
            match exhausted.get(&c.key) {
                Some(&until) if until > now => {
                    let retry = until - now;
                    return Some(Verdict::Refused {
                        index,
                        refused: Refused {
                            retry_us: u64::try_from(retry.as_micros()).unwrap_or(u64::MAX),
                            exhausted: true,
                        },
                    });
                }
                Some(_) => {
                    exhausted.remove(&c.key);
                }
                None => {}
            }
        }
        None
    }

    fn remember_exhausted(&self, key: &str, retry_us: u64) {
        if retry_us == u64::MAX {
            return;
        }
        if let Ok(mut exhausted) = self.exhausted.lock() {
            let now = Instant::now();
            if exhausted.len() >= MAX_EXHAUSTED {
                exhausted.retain(|_, until| *until > now);
            }
            if exhausted.len() < MAX_EXHAUSTED {
                exhausted.insert(key.to_owned(), now + Duration::from_micros(retry_us));
            }
        }
    }

    /// The shared connection, connecting (once at a time, with back-off) when there is none.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let now = Instant::now();
        if let Ok(retry_at) = self.retry_at.lock()
            && retry_at.is_some_and(|t| t > now)
        {
            return Err(StoreError("Redis is unreachable (retrying shortly)".into()));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(1);
        let connected = tokio::time::timeout(
            self.config.timeout * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match connected {
            Ok(Ok(conn)) => {
                *guard = Some(conn.clone());
                Ok(conn)
            }
            Ok(Err(e)) => {
                self.back_off(now);
                Err(StoreError(format!("cannot connect to Redis: {e}")))
            }
            Err(_) => {
                self.back_off(now);
                Err(StoreError("connecting to Redis timed out".into()))
            }
        }
    }

    fn back_off(&self, now: Instant) {
        if let Ok(mut retry_at) = self.retry_at.lock() {
            *retry_at = Some(now + RECONNECT_BACKOFF);
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Check => "check",
        Op::Force => "force",
        Op::Refund => "refund",
        Op::Release => "release",
        Op::Peek => "peek",
    }
}

fn parse_reply(reply: &[i64], n: usize) -> Result<Verdict, StoreError> {
    let bad = || {
        StoreError(format!(
            "unexpected reply from the limits script: {reply:?}"
        ))
    };
    let [status, index, retry, exhausted, rest @ ..] = reply else {
        return Err(bad());
    };
    let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
    if *status == 0 {
        let index = usize::try_from(*index - 1).map_err(|_| bad())?;
        return Ok(Verdict::Refused {
            index,
            refused: Refused {
                retry_us: if *retry < 0 { u64::MAX } else { to_u64(*retry) },
                exhausted: *exhausted == 1,
            },
        });
    }
    if rest.len() != 2 * n {
        return Err(bad());
    }
    Ok(Verdict::Applied(
        rest.chunks_exact(2)
            .map(|p| Reading {
                remaining: to_u64(p[0]),
                reset_us: to_u64(p[1]),
            })
            .collect(),
    ))
}
