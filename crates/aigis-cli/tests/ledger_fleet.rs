//! Two `aigis gateway` processes append to one PostgreSQL ledger (the real server on
//! 127.0.0.1:5432, a private database per test) under concurrent requests: afterwards
//! `aigis audit verify` passes, the indices have no gap and every request id a client got
//! back is in the log exactly once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::collections::HashMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const THREADS: usize = 8;
const PER_THREAD: usize = 40;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A private database, dropped at the end.
struct Db {
    name: String,
}

impl Db {
    fn create() -> Option<Self> {
        rt().block_on(async {
            let Ok((client, conn)) = tokio_postgres::connect(ADMIN, tokio_postgres::NoTls).await
            else {
                assert!(
                    std::env::var("AIGIS_REQUIRE_SERVICES").is_err(),
                    "PostgreSQL is required but not reachable"
                );
                eprintln!("skipping: PostgreSQL is not reachable at 127.0.0.1:5432");
                return None;
            };
            tokio::spawn(conn);
            let name = format!(
                "aigis_test_fleet_{}_{}",
                std::process::id(),
                aigis_ledger::now_ms()
            );
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            Some(Self { name })
        })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let name = self.name.clone();
        rt().block_on(async {
            if let Ok((client, conn)) = tokio_postgres::connect(ADMIN, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    }
}

struct Gw {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `aigis gateway -c config`; waits for its "listening" log line.
fn start(config: &Path, log: &Path) -> Gw {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(["gateway", "--config", config.to_str().unwrap()])
        .env("AIGIS_LOG", "info,aigis::access=off")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let listening = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == "aigis gateway listening");
        if let Some(v) = listening {
            let addr = v["public_addr"].as_str().unwrap().parse().unwrap();
            return Gw { child, addr };
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited ({status}): {text}");
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One chat request over HTTP/1.1; returns (status, x-request-id).
fn chat(addr: SocketAddr, n: usize) -> (u16, String) {
    let body =
        format!(r#"{{"model":"echo","messages":[{{"role":"user","content":"hello {n}"}}]}}"#);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut id = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("x-request-id")
        {
            v.trim().clone_into(&mut id);
        }
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).ok();
    (status, id)
}

fn aigis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn two_gateway_processes_append_to_one_gap_free_postgres_ledger() {
    let Some(db) = Db::create() else { return };
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "aigis-fleet-{}-{}",
        std::process::id(),
        aigis_ledger::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ledger.key");
    assert!(
        aigis(&["audit", "init", "--key", key.to_str().unwrap()])
            .status
            .success()
    );
    let config = dir.join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [[upstreams]]\nname = \"echo\"\nkind = \"echo\"\n\
             [[routes]]\nname = \"r\"\nmodels = [\"echo\"]\nupstream = \"echo\"\n\
             [ledger]\nstore = \"{}\"\nsigning_key = \"file:ledger.key\"\ncheckpoint_every = \"100ms\"\non_store_error = \"fail-closed\"\n",
            db.url()
        ),
    )
    .unwrap();
    let gws = [
        start(&config, &dir.join("a.log")),
        start(&config, &dir.join("b.log")),
    ];
    let addrs = [gws[0].addr, gws[1].addr];
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| chat(addrs[(t + i) % 2], t * PER_THREAD + i))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in threads {
        for (status, id) in t.join().unwrap() {
            assert_eq!(status, 200);
            assert!(!id.is_empty());
            ids.push(id);
        }
    }
    // A graceful stop commits what is queued and signs a final checkpoint.
    for gw in &gws {
        let pid = gw.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
    for mut gw in gws {
        let status = gw.child.wait().unwrap();
        assert!(status.success(), "gateway exit: {status}");
    }

    let store = db.url();
    let key_s = key.to_str().unwrap();
    let out = aigis(&[
        "audit", "verify", "--store", &store, "--key", key_s, "--format", "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["entries"], THREADS * PER_THREAD);
    let out = aigis(&["audit", "export", "--store", &store, "--format", "jsonl"]);
    assert!(out.status.success());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in String::from_utf8(out.stdout).unwrap().lines().enumerate() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["index"], i, "indices are gap-free and in order");
        *seen
            .entry(e["request_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "request {id} is in the log exactly once"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
