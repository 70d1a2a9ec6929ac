//! The admit stage against the in-process store, with limits loaded from config text.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::{self, Config};
use crate::parse::{self, Endpoint};
use cell::Refused;

fn config(limits: &str) -> Config {
    let src = format!(
        r#"
[[upstreams]]
name = "echo"
kind = "echo"

[[routes]]
name = "r"
models = ["gpt-4o*", "m"]
upstream = "echo"
guard = "off"

{limits}
"#
    );
    config::parse(&src, std::path::Path::new("."), false)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .config
}

fn principal(id: &str, teams: &[&str]) -> Principal {
    Principal {
        id: id.into(),
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        ..Principal::anonymous()
    }
}

fn parsed(body: &str) -> Parsed {
    let limits = crate::config::RequestLimits {
        max_body: 1 << 20,
        max_header: 1 << 15,
        max_json_depth: 32,
        max_messages: 100,
        max_string: 1 << 20,
        max_n: 4,
    };
    parse::parse(
        Endpoint::ChatCompletions,
        bytes::Bytes::from(body.to_owned()),
        &limits,
    )
    .unwrap()
}

const HELLO: &str =
    r#"{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hello world"}]}"#;

async fn try_admit(
    limiter: &Limiter,
    cfg: &Config,
    who: &Principal,
    body: &str,
) -> Result<(Admitted, Ticket, HeaderMap), GatewayError> {
    let parsed = parsed(body);
    let req = Request {
        principal: who,
        route: &cfg.routes[0],
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        parsed: &parsed,
    };
    admit(
        limiter,
        &cfg.limits,
        &req,
        &Metrics::default(),
        &mut Vec::new(),
    )
    .await
}

#[tokio::test]
async fn requests_are_limited_per_principal_with_openai_headers() {
    let cfg = config("[[limits]]\nname = \"rpm\"\nscope = \"principal\"\nrequests = \"3/min\"");
    let limiter = Limiter::default();
    let (alice, bob) = (principal("alice", &[]), principal("bob", &[]));
    for left in (0..3).rev() {
        let (_, ticket, headers) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
        assert_eq!(headers["x-ratelimit-limit-requests"], "3");
        assert_eq!(
            headers["x-ratelimit-remaining-requests"],
            left.to_string().as_str()
        );
        ticket.settle(None).await;
    }
    let Err(GatewayError::Limited(r)) = try_admit(&limiter, &cfg, &alice, HELLO).await else {
        panic!("the fourth request must be refused");
    };
    assert!(r.message.contains("`rpm`"), "{}", r.message);
    assert_eq!(r.retry_after_secs, 20);
    assert!(!r.quota);
    // Another principal has its own counter.
    assert!(try_admit(&limiter, &cfg, &bob, HELLO).await.is_ok());
}

#[tokio::test]
async fn token_reservations_are_settled_with_actual_usage() {
    let cfg = config("[[limits]]\nname = \"tpm\"\nscope = \"principal\"\ntokens = \"100/hour\"");
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    let (_, ticket, headers) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    // "hello world" is 2 tokens, + 3 per message + 1 for the role + 3 priming = 9, + 10 reserved.
    assert_eq!(ticket.prompt, 9);
    assert_eq!(headers["x-ratelimit-remaining-tokens"], "81");
    ticket
        .settle(Some(Usage {
            prompt: 9,
            completion: 1,
        }))
        .await;
    let (_, ticket, headers) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    assert_eq!(
        headers["x-ratelimit-remaining-tokens"], "71",
        "10 used, 19 reserved"
    );
    drop(ticket); // a dropped non-streamed ticket keeps its reservation
    let big = r#"{"model":"gpt-4o","max_tokens":90,"messages":[{"role":"user","content":"hi"}]}"#;
    let Err(GatewayError::Limited(r)) = try_admit(&limiter, &cfg, &alice, big).await else {
        panic!("over the remaining tokens");
    };
    assert!(r.message.contains("tokens per 1h"), "{}", r.message);
    let huge = r#"{"model":"gpt-4o","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}"#;
    let Err(GatewayError::Limited(r)) = try_admit(&limiter, &cfg, &alice, huge).await else {
        panic!("over the whole limit");
    };
    assert!(r.message.contains("can never admit"), "{}", r.message);
}

#[tokio::test]
async fn reservations_count_every_completion_and_never_wrap() {
    let cfg = config("[[limits]]\nname = \"tpm\"\nscope = \"principal\"\ntokens = \"100/hour\"");
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    // Added to the prompt, the largest max_tokens would wrap around to a few tokens.
    let huge = format!(
        r#"{{"model":"gpt-4o","max_tokens":{},"messages":[{{"role":"user","content":"hi"}}]}}"#,
        u64::MAX
    );
    let Err(GatewayError::Limited(r)) = try_admit(&limiter, &cfg, &alice, &huge).await else {
        panic!("u64::MAX completion tokens admitted");
    };
    assert!(r.message.contains("can never admit"), "{}", r.message);
    // Three completions of up to 20 tokens each reserve 60.
    let three =
        r#"{"model":"gpt-4o","max_tokens":20,"n":3,"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, ticket, headers) = try_admit(&limiter, &cfg, &alice, three).await.unwrap();
    let left = 100 - ticket.prompt - 60;
    assert_eq!(
        headers["x-ratelimit-remaining-tokens"],
        left.to_string().as_str()
    );
    ticket.settle(None).await;
}

#[tokio::test]
async fn a_team_listed_twice_is_charged_once() {
    let cfg = config("[[limits]]\nname = \"team-rpm\"\nscope = \"team\"\nrequests = \"2/min\"");
    let limiter = Limiter::default();
    let alice = principal("alice", &["search", "search"]);
    for _ in 0..2 {
        let (_, ticket, headers) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
        assert_eq!(headers["x-ratelimit-limit-requests"], "2");
        ticket.settle(None).await;
    }
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_err());
}

#[tokio::test]
async fn a_refused_batch_charges_nothing() {
    let cfg = config(
        "[[limits]]\nname = \"wide\"\nscope = \"principal\"\nrequests = \"100/min\"\n\
         [[limits]]\nname = \"narrow\"\nscope = \"team\"\nrequests = \"1/min\"",
    );
    let limiter = Limiter::default();
    let alice = principal("alice", &["search"]);
    let (_, t, headers) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    t.settle(None).await;
    assert_eq!(
        headers["x-ratelimit-remaining-requests"], "0",
        "the tightest limit is reported"
    );
    for _ in 0..5 {
        assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_err());
    }
    // A principal outside the team is only under the wide limit, which saw 1 request.
    let solo = principal("solo", &[]);
    let (_, _, headers) = try_admit(&limiter, &cfg, &solo, HELLO).await.unwrap();
    assert_eq!(headers["x-ratelimit-remaining-requests"], "99");
}

#[tokio::test]
async fn concurrency_slots_are_released_when_tickets_end() {
    let cfg = config("[[limits]]\nname = \"one\"\nscope = \"principal\"\nconcurrent = 1");
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    let (_, held, _) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_err());
    drop(held);
    let (_, held, _) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    held.settle(None).await;
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_ok());
}

#[tokio::test]
async fn budgets_charge_priced_cost_and_refuse_as_quota() {
    let cfg = config(
        "[[limits]]\nname = \"spend\"\nscope = \"team\"\nbudget = \"0.0002USD/day\"\n\
         [[prices]]\nmodel = \"gpt-4o*\"\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0",
    );
    let limiter = Limiter::default();
    let alice = principal("alice", &["t"]);
    // 9 prompt tokens * 2.5 + 10 completion * 10 = 122.5 -> 123 micro-USD reserved of 200.
    let (_, t, _) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    let Err(GatewayError::Limited(r)) = try_admit(&limiter, &cfg, &alice, HELLO).await else {
        panic!("the second reservation does not fit");
    };
    assert!(
        r.quota && r.message.contains("budget `spend`"),
        "{}",
        r.message
    );
    t.settle(Some(Usage {
        prompt: 9,
        completion: 0,
    }))
    .await; // 23 micro-USD used
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_ok());
}

#[tokio::test]
async fn streams_extend_their_reservation_until_the_limit() {
    let cfg = config("[[limits]]\nname = \"tph\"\nscope = \"principal\"\ntokens = \"60/hour\"");
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    let (_, mut t, _) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    assert!(t.meters_tokens());
    assert!(t.extend(10).await.is_ok(), "within the reservation");
    assert!(t.extend(40).await.is_ok(), "grows by a step");
    let refused = t.extend(60).await.unwrap_err();
    assert_eq!(refused.limit, "tph");
    drop(t); // settles with the 60 streamed tokens: 9 + 60 > 60, all used
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_err());
}

#[test]
fn durations_read_like_openai_reset_headers() {
    use std::time::Duration;
    assert_eq!(fmt_duration(Duration::from_millis(17)), "17ms");
    assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(fmt_duration(Duration::from_mins(6)), "6m0s");
    assert_eq!(fmt_duration(Duration::from_hours(2)), "2h0m0s");
    assert_eq!(fmt_duration(Duration::from_hours(3 * 24 + 2)), "3d2h");
}

/// The Redis script and the in-process store agree, charge by charge, on a random workload
/// (the shared Redis on 127.0.0.1:6379, under a key prefix of this test's own).
#[tokio::test]
async fn the_redis_script_agrees_with_the_local_store() {
    let prefix = format!("aigis_test_{}", uuid::Uuid::new_v4().simple());
    let fleet = Fleet::new(crate::config::RedisStore {
        url: "redis://127.0.0.1:6379".into(),
        key_prefix: prefix.clone(),
        timeout: std::time::Duration::from_secs(2),
    })
    .unwrap();
    let local = Local::default();
    let far = now_us() + 86_400_000_000;
    let kinds = [
        Kind::Rate {
            limit: 7,
            period_us: 3_600_000_000,
        },
        Kind::Rate {
            limit: 1000,
            period_us: 86_400_000_000,
        },
        Kind::Window {
            limit: 50,
            ends_us: far,
        },
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    for round in 0..200 {
        let n = 1 + next(3);
        let charges: Vec<Charge> = (0..n)
            .map(|_| {
                let k = next(kinds.len());
                let kind = kinds[k];
                let amount = match kind {
                    Kind::Rate { limit: 1000, .. } => next(300) as u64,
                    _ => 1 + next(4) as u64,
                };
                Charge {
                    key: format!("k{k}"),
                    kind,
                    amount,
                    monotone: false,
                }
            })
            .collect();
        let op = [Op::Check, Op::Check, Op::Check, Op::Refund, Op::Force][next(5)];
        let remote = fleet.apply(op, "t", &charges).await.unwrap();
        let here = local.apply(op, &charges, now_us()).unwrap();
        // Rate readings depend on the exact microsecond; compare outcomes and counters.
        match (&remote, &here) {
            (Verdict::Applied(r), Verdict::Applied(h)) => {
                for ((c, r), h) in charges.iter().zip(r).zip(h) {
                    if !matches!(c.kind, Kind::Rate { .. }) {
                        assert_eq!(r.remaining, h.remaining, "round {round}: {c:?}");
                    }
                }
            }
            (Verdict::Refused { index: a, .. }, Verdict::Refused { index: b, .. }) => {
                assert_eq!(a, b, "round {round}");
            }
            _ => panic!("round {round}: redis {remote:?} vs local {here:?} for {op:?} {charges:?}"),
        }
    }
    drop_keys(&prefix).await;
}

/// Settlements that arrive while one is in flight go together, amounts summed per counter,
/// and leave the counters exactly where one call per settlement would.
#[tokio::test]
async fn redis_settlements_are_grouped_and_exact() {
    let prefix = format!("aigis_test_{}", uuid::Uuid::new_v4().simple());
    let fleet = Arc::new(
        Fleet::new(crate::config::RedisStore {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: prefix.clone(),
            timeout: std::time::Duration::from_secs(2),
        })
        .unwrap(),
    );
    let local = Local::default();
    let window = |key: &str, amount: u64| Charge {
        key: key.into(),
        kind: Kind::Window {
            limit: 1_000_000,
            ends_us: now_us() + 3_600_000_000,
        },
        amount,
        monotone: false,
    };
    let reserve = [window("a", 100_000), window("b", 100_000)];
    fleet.apply(Op::Check, "t", &reserve).await.unwrap();
    local.apply(Op::Check, &reserve, now_us()).unwrap();
    let before = fleet.calls();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200_u64 {
        let (op, charges) = if i % 3 == 0 {
            (Op::Force, vec![window("a", i)])
        } else {
            (Op::Refund, vec![window("a", i), window("b", 2 * i)])
        };
        local.apply(op, &charges, now_us()).unwrap();
        let fleet = fleet.clone();
        tasks.spawn(async move { fleet.settle(op, "t", charges).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let calls = fleet.calls() - before;
    assert!(calls < 20, "200 settlements took {calls} script calls");
    let peek = [window("a", 0), window("b", 0)];
    let (Verdict::Applied(remote), Verdict::Applied(here)) = (
        fleet.apply(Op::Peek, "t", &peek).await.unwrap(),
        local.apply(Op::Peek, &peek, now_us()).unwrap(),
    ) else {
        panic!("peek refused");
    };
    for (r, h) in remote.iter().zip(&here) {
        assert_eq!(r.remaining, h.remaining);
    }
    drop_keys(&prefix).await;
}

/// Deletes this test's keys from the shared Redis.
async fn drop_keys(prefix: &str) {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// Concurrency slots are a set of request ids with a lease; the first tier refuses a request
/// counter Redis refused outright without asking again.
#[tokio::test]
async fn redis_concurrency_slots_and_the_first_tier() {
    let prefix = format!("aigis_test_{}", uuid::Uuid::new_v4().simple());
    let fleet = Fleet::new(crate::config::RedisStore {
        url: "redis://127.0.0.1:6379".into(),
        key_prefix: prefix.clone(),
        timeout: std::time::Duration::from_secs(2),
    })
    .unwrap();
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Concurrency slots in Redis are a set of request (ticket) ids with a lease.
    let slot = |()| Charge {
        key: "slots".into(),
        kind: Kind::Concurrency { limit: 2 },
        amount: 1,
        monotone: false,
    };
    for (ticket, admitted) in [("a", true), ("b", true), ("c", false)] {
        let v = fleet.apply(Op::Check, ticket, &[slot(())]).await.unwrap();
        assert_eq!(matches!(v, Verdict::Applied(_)), admitted, "{ticket}");
    }
    fleet.apply(Op::Release, "a", &[slot(())]).await.unwrap();
    let v = fleet.apply(Op::Check, "c", &[slot(())]).await.unwrap();
    assert!(
        matches!(v, Verdict::Applied(ref r) if r[0].remaining == 0),
        "{v:?}"
    );

    // The first tier: once Redis refused a request counter outright, this gateway refuses it
    // without asking (shown by deleting the counter behind its back).
    let rpm = [Charge {
        key: "rpm".into(),
        kind: Kind::Rate {
            limit: 2,
            period_us: 3_600_000_000,
        },
        amount: 1,
        monotone: true,
    }];
    for admitted in [true, true, false] {
        let v = fleet.apply(Op::Check, "r", &rpm).await.unwrap();
        assert_eq!(matches!(v, Verdict::Applied(_)), admitted);
    }
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:rpm"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let v = fleet.apply(Op::Check, "r", &rpm).await.unwrap();
    assert!(matches!(
        v,
        Verdict::Refused {
            refused: Refused {
                exhausted: true,
                ..
            },
            ..
        }
    ));

    drop_keys(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_under_a_race_never_overspends_by_more_than_one_reservation() {
    let cfg = std::sync::Arc::new(config(
        "[[limits]]\nname = \"b\"\nscope = \"team\"\nbudget = \"1000 tokens/day\"",
    ));
    let limiter = std::sync::Arc::new(Limiter::default());
    let mut tasks = Vec::new();
    for i in 0..300 {
        let (cfg, limiter) = (cfg.clone(), limiter.clone());
        tasks.push(tokio::spawn(async move {
            let who = principal(&format!("p{i}"), &["t"]);
            match try_admit(&limiter, &cfg, &who, HELLO).await {
                Ok((_, t, _)) => {
                    t.settle(Some(Usage {
                        prompt: 9,
                        completion: 10,
                    }))
                    .await;
                    1
                }
                Err(_) => 0,
            }
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    // 19 tokens reserved (and used) each: exactly 52 fit in 1000, whatever the interleaving.
    assert_eq!(admitted, 52);
}

/// A private `redis-server` (never the shared one: tests kill it), killed when dropped.
struct PrivateRedis(std::process::Child);

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a [`PrivateRedis`] on a free port.
fn private_redis() -> Option<(PrivateRedis, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = PrivateRedis(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?,
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[tokio::test]
async fn a_stream_stops_when_a_fail_closed_limit_loses_its_store() {
    let Some((redis, port)) = private_redis() else {
        eprintln!("notice: redis-server not available; mid-stream store loss not tested");
        return;
    };
    let cfg = |mode: &str| {
        config(&format!(
            "[cluster]\nredis = \"redis://127.0.0.1:{port}\"\nkey_prefix = \"t\"\n\
             [[limits]]\nname = \"tph\"\nscope = \"principal\"\ntokens = \"100000/hour\"\n\
             on_store_error = \"{mode}\""
        ))
    };
    let (closed, open) = (cfg("fail-closed"), cfg("fail-open"));
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    let (_, mut closed_ticket, _) = try_admit(&limiter, &closed, &alice, HELLO).await.unwrap();
    let (_, mut open_ticket, _) = try_admit(&limiter, &open, &alice, HELLO).await.unwrap();
    // Within the reservation nothing is asked of the store; past it, the store is needed.
    closed_ticket.extend(5).await.unwrap();
    drop(redis);
    let Err(r) = closed_ticket.extend(500).await else {
        panic!("a fail-closed stream went on unmetered");
    };
    assert!(r.message.contains("became unreachable"), "{}", r.message);
    assert_eq!(r.limit, "tph");
    open_ticket
        .extend(500)
        .await
        .expect("a fail-open stream goes on");
}

/// A TCP proxy to `port` whose open connections can be silenced: kept open, nothing passed
/// either way (a half-open connection after a failover or a NAT timeout). New connections
/// pass.
async fn silencer(port: u16) -> (u16, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shared = generation.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let born = shared.load(SeqCst);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            for (mut from, mut to) in [(client_read, server_write), (server_read, client_write)] {
                let generation = shared.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1 << 14];
                    while let Ok(n @ 1..) = from.read(&mut buf).await {
                        if generation.load(SeqCst) == born && to.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
            }
        }
    });
    (proxy_port, generation)
}

#[tokio::test]
async fn a_redis_connection_that_stops_answering_is_replaced() {
    let Some((_redis, port)) = private_redis() else {
        eprintln!("notice: redis-server not available; a silent Redis connection not tested");
        return;
    };
    let (proxy, silence) = silencer(port).await;
    let fleet = Fleet::new(crate::config::RedisStore {
        url: format!("redis://127.0.0.1:{proxy}"),
        key_prefix: "t".into(),
        timeout: std::time::Duration::from_millis(250),
    })
    .unwrap();
    let charge = [Charge {
        key: "k".into(),
        kind: Kind::Rate {
            limit: 100,
            period_us: 3_600_000_000,
        },
        amount: 1,
        monotone: false,
    }];
    assert!(fleet.apply(Op::Check, "t", &charge).await.is_ok());
    silence.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let e = fleet.apply(Op::Check, "t", &charge).await.unwrap_err();
    assert!(e.0.contains("Redis"), "{e:?}");
    // The silent connection was dropped: the next call goes over a new one.
    assert!(fleet.apply(Op::Check, "t", &charge).await.is_ok());
}

#[tokio::test]
async fn a_release_lost_to_a_store_error_is_tried_again() {
    let Some((_redis, port)) = private_redis() else {
        eprintln!("notice: redis-server not available; release retries not tested");
        return;
    };
    let (proxy, silence) = silencer(port).await;
    let cfg = config(&format!(
        "[cluster]\nredis = \"redis://127.0.0.1:{proxy}\"\nkey_prefix = \"t\"\nstore_timeout = \"250ms\"\n\
         [[limits]]\nname = \"one\"\nscope = \"principal\"\nconcurrent = 1"
    ));
    let limiter = Limiter::default();
    let alice = principal("alice", &[]);
    let (_, held, _) = try_admit(&limiter, &cfg, &alice, HELLO).await.unwrap();
    assert!(try_admit(&limiter, &cfg, &alice, HELLO).await.is_err());
    // The release goes unanswered; it is tried again over a new connection a second later,
    // instead of the slot staying taken for its 30-minute lease.
    silence.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    held.settle(None).await;
    for _ in 0..100 {
        if try_admit(&limiter, &cfg, &alice, HELLO).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the slot was never released");
}
