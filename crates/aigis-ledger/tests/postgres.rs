//! The PostgreSQL store against the real server on 127.0.0.1:5432 (a private database
//! `aigis_test_<random>` per test, dropped at the end): two writers appending concurrently
//! produce one gap-free, verifiable log; an aborted transaction leaves no gap (a SERIAL
//! column does, shown side by side); tampering is named as with SQLite; a store whose
//! connections are killed, or whose server goes away and comes back, reconnects; a batch whose
//! `COMMIT` went unanswered (a proxy cuts the connection around it) is looked up, never stored
//! twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::sync::Arc;
use std::time::Duration;

use aigis_ledger::store::postgres::PgStore;
use aigis_ledger::store::{Appender, LogReader};
use aigis_ledger::{
    Ack, Encoded, Event, EventKind, Ledger, LedgerError, LedgerKeys, WriterConfig, audit,
};

const PER_WRITER: u64 = 400;
const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Db {
    name: String,
    url: String,
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
            let name = format!("aigis_test_{:016x}", rand_u64());
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            Some(Self {
                url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                name,
            })
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            rt().block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(ADMIN, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn event(writer: u32, i: u64) -> Event {
    let mut e = Event::new(
        EventKind::AiCall,
        &format!("w{writer}-{i}"),
        "chat_completions",
        1_700_000_000_000 + i,
    );
    e.principal = Some(format!("key:writer{writer}"));
    e.status = 200;
    e
}

#[test]
fn two_writers_append_concurrently_into_one_gap_free_verifiable_log() {
    let Some(db) = Db::create() else { return };
    let keys = Arc::new(LedgerKeys::generate("pg.test/ledger").unwrap());
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let (url, keys) = (db.url.clone(), keys.clone());
            std::thread::spawn(move || {
                let store = PgStore::connect(&url, Some(keys.origin())).unwrap();
                let config = WriterConfig {
                    checkpoint_every: Duration::from_millis(10),
                    queue: 256,
                    max_batch: 64,
                    ..WriterConfig::default()
                };
                let ledger = Ledger::start(Box::new(store), keys, None, config).unwrap();
                let acked: Vec<u64> = rt().block_on(async {
                    let mut pending = Vec::new();
                    for i in 0..PER_WRITER {
                        let l = ledger.clone();
                        pending.push(tokio::spawn(async move { l.append(event(w, i)).await }));
                    }
                    let mut out = Vec::new();
                    for p in pending {
                        match p.await.unwrap().unwrap() {
                            Ack::Stored(i) => out.push(i),
                            Ack::Spooled => panic!("no spool configured"),
                        }
                    }
                    out
                });
                ledger.close();
                acked
            })
        })
        .collect();
    let mut all: Vec<u64> = writers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..2 * PER_WRITER).collect::<Vec<_>>(),
        "indices are unique and gap-free"
    );
    let mut store = PgStore::connect(&db.url, None).unwrap();
    let report = audit::verify(&mut store, &keys.verifiers(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 2 * PER_WRITER);
    assert!(report.checkpoints >= 2);
    // A receipt from the shared log verifies.
    let receipt = audit::prove(&mut store, "w1-17", None).unwrap();
    audit::verify_receipt(&serde_json::to_vec(&receipt).unwrap(), &keys.verifiers()).unwrap();
}

#[test]
fn aborted_transactions_leave_no_gap_unlike_serial() {
    let Some(db) = Db::create() else { return };
    let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
    let mut store = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut tree = store.load_tree().unwrap();
    store
        .append(&mut [event(0, 0).into(), event(0, 1).into()], &mut tree)
        .unwrap();
    store
        .append_and_abort(&mut [event(0, 2).into(), event(0, 3).into(), event(0, 4).into()])
        .unwrap();
    let mut batch = [Encoded::new(event(0, 5))];
    store.append(&mut batch, &mut tree).unwrap();
    assert_eq!(
        batch[0].index, 2,
        "the aborted batch's indices are reused: no gap"
    );
    let mut idx = Vec::new();
    store
        .scan(0, &mut |r| {
            idx.push(r.idx);
            Ok(true)
        })
        .unwrap();
    assert_eq!(idx, vec![0, 1, 2]);
    // The same with a SERIAL column leaves a hole.
    // (Each statement on its own: a multi-statement string is one implicit transaction.)
    for sql in [
        "CREATE TABLE serial_demo (id SERIAL PRIMARY KEY, v TEXT)",
        "INSERT INTO serial_demo (v) VALUES ('a')",
        "BEGIN; INSERT INTO serial_demo (v) VALUES ('b'); ROLLBACK",
        "INSERT INTO serial_demo (v) VALUES ('c')",
    ] {
        store.execute_batch(sql).unwrap();
    }
    let demo = rt_query(
        &db.url,
        "SELECT array_to_string(array_agg(id ORDER BY id), ',') FROM serial_demo",
    );
    assert_eq!(demo, "1,3", "SERIAL skipped the aborted id");
}

fn rt_query(url: &str, sql: &str) -> String {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        rt().block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query_one(&sql, &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        })
    })
    .join()
    .unwrap()
}

#[test]
fn tampering_in_postgres_is_named() {
    let Some(db) = Db::create() else { return };
    let keys = Arc::new(LedgerKeys::generate("pg.test/ledger").unwrap());
    let store = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let ledger =
        Ledger::start(Box::new(store), keys.clone(), None, WriterConfig::default()).unwrap();
    rt().block_on(async {
        for i in 0..30 {
            ledger.append(event(0, i)).await.unwrap();
            if i % 10 == 9 {
                ledger.checkpoint().await.unwrap();
            }
        }
    });
    ledger.close();
    let mut store = PgStore::connect(&db.url, None).unwrap();
    assert!(
        audit::verify(&mut store, &keys.verifiers(), &[])
            .unwrap()
            .ok()
    );
    for (sql, first_bad) in [
        (
            "UPDATE aigis_ledger_entries SET event = convert_to(replace(convert_from(event, 'UTF8'), 'writer0', 'writer9'), 'UTF8') WHERE idx = 12",
            12,
        ),
        ("DELETE FROM aigis_ledger_entries WHERE idx = 12", 12),
    ] {
        store.execute_batch(sql).unwrap();
        let r = audit::verify(&mut store, &keys.verifiers(), &[]).unwrap();
        assert_eq!(
            r.first_bad_entry(),
            Some(first_bad),
            "{sql}: {:?}",
            r.problems
        );
    }
}

#[test]
fn a_committed_batch_is_acknowledged_even_when_reading_the_log_back_fails() {
    let Some(db) = Db::create() else { return };
    let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
    let mut ours = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut other = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut tree = ours.load_tree().unwrap();
    let mut other_tree = other.load_tree().unwrap();
    // Another gateway's entry that cannot be read back (its stored leaf hash is damaged).
    other
        .append(&mut [event(1, 0).into()], &mut other_tree)
        .unwrap();
    other
        .execute_batch("UPDATE aigis_ledger_entries SET leaf = decode('00', 'hex') WHERE idx = 0")
        .unwrap();
    let mut batch = [Encoded::new(event(0, 0))];
    ours.append(&mut batch, &mut tree)
        .expect("committed, so acknowledged (else the writer would spool it: a duplicate)");
    assert_eq!(batch[0].index, 1);
    assert_eq!(tree.size(), 0, "the tree is behind");
    // The next append catches up first, and commits nothing while it cannot.
    assert!(ours.append(&mut [event(0, 1).into()], &mut tree).is_err());
    let mut stored = Vec::new();
    ours.scan(0, &mut |r| {
        stored.push(r);
        Ok(true)
    })
    .unwrap();
    assert_eq!(stored.len(), 2);
    let leaf = aigis_ledger::merkle::leaf_hash(&stored[0].event);
    other
        .execute_batch(&format!(
            "UPDATE aigis_ledger_entries SET leaf = decode('{}', 'hex') WHERE idx = 0",
            hex::encode(leaf)
        ))
        .unwrap();
    let mut batch = [Encoded::new(event(0, 1))];
    ours.append(&mut batch, &mut tree).unwrap();
    assert_eq!(batch[0].index, 2);
    assert_eq!(tree.size(), 3);
    assert_eq!(tree.root(), ours.load_tree().unwrap().root());
}

#[test]
fn a_row_at_the_largest_index_ends_a_scan_with_an_error() {
    let Some(db) = Db::create() else { return };
    let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
    let mut store = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut tree = store.load_tree().unwrap();
    let mut batch: Vec<Encoded> = (0..3).map(|i| event(0, i).into()).collect();
    store.append(&mut batch, &mut tree).unwrap();
    store
        .execute_batch(&format!(
            "UPDATE aigis_ledger_entries SET idx = {} WHERE idx = 2",
            i64::MAX
        ))
        .unwrap();
    let mut seen = Vec::new();
    let err = store
        .scan(0, &mut |r| {
            seen.push(r.idx);
            Ok(true)
        })
        .unwrap_err();
    let max = i64::MAX.unsigned_abs();
    assert!(
        matches!(err, LedgerError::Corrupt { index, .. } if index == max),
        "{err}"
    );
    assert_eq!(seen, [0, 1, max]);
    // verify stops at the gap, naming it.
    let r = audit::verify(&mut store, &keys.verifiers(), &[]).unwrap();
    assert_eq!(r.first_bad_entry(), Some(2), "{:?}", r.problems);
}

/// A schema altered by hand (a NULL where the store wrote bytes) is an error from the
/// reader, not a panic.
#[test]
fn a_null_in_an_altered_schema_is_an_error_not_a_panic() {
    let Some(db) = Db::create() else { return };
    let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
    let mut store = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut tree = store.load_tree().unwrap();
    let mut batch: Vec<Encoded> = (0..3).map(|i| event(0, i).into()).collect();
    store.append(&mut batch, &mut tree).unwrap();
    store
        .execute_batch(
            "ALTER TABLE aigis_ledger_entries ALTER COLUMN event DROP NOT NULL; \
             UPDATE aigis_ledger_entries SET event = NULL WHERE idx = 1",
        )
        .unwrap();
    let err = store.scan(0, &mut |_| Ok(true)).unwrap_err();
    assert!(err.to_string().contains("schema was altered"), "{err}");
    assert!(audit::verify(&mut store, &keys.verifiers(), &[]).is_err());
}

/// Whether a connection through [`aigis_ledger::store::postgres::tls_connector`] to `url` is
/// encrypted, as the server sees it; an error says why it could not be made.
fn ssl_of(url: &str, root_cert: Option<&std::path::Path>) -> Result<bool, String> {
    let (url, tls, _) = aigis_ledger::store::postgres::tls_connector(url, root_cert)?;
    rt().block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tls)
            .await
            .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
        tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    })
}

#[test]
fn connections_use_tls_as_libpq_sslmode_says() {
    if Db::create().is_none() {
        return;
    }
    let url = |host: &str, mode: &str| format!("postgres://postgres@{host}:5432/postgres{mode}");
    let plain = ssl_of(&url("127.0.0.1", "?sslmode=disable"), None).unwrap();
    assert!(!plain, "sslmode=disable is plaintext");
    let by_default = ssl_of(&url("127.0.0.1", ""), None).unwrap();
    if !by_default {
        eprintln!("notice: this server does not offer TLS; TLS checks skipped");
        return;
    }
    // The server's certificate is not signed by a system root: verify-full refuses it.
    let refused = ssl_of(&url("127.0.0.1", "?sslmode=verify-full"), None).unwrap_err();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    // With the server's own certificate as the root, verify-full passes for the name it holds
    // (Debian's snake-oil certificate names localhost), and not for another.
    let snakeoil = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    if !snakeoil.exists() {
        eprintln!(
            "notice: no {} here; verify-full success not checked",
            snakeoil.display()
        );
        return;
    }
    match ssl_of(&url("localhost", "?sslmode=verify-full"), Some(snakeoil)) {
        Ok(ssl) => {
            assert!(ssl);
            let wrong_name = ssl_of(&url("127.0.0.1", "?sslmode=verify-full"), Some(snakeoil));
            assert!(
                wrong_name.is_err(),
                "a certificate for localhost passed for 127.0.0.1"
            );
        }
        Err(e) => eprintln!("notice: the server's certificate is not the snake-oil one ({e})"),
    }
}

/// Runs `sql` as the server's administrator (on the `postgres` database).
fn admin(sql: &str) {
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        rt().block_on(async {
            let (client, conn) = tokio_postgres::connect(ADMIN, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
        });
    })
    .join()
    .unwrap();
}

/// Ends every connection to `db` (as a server restart or a failover does).
fn kill_connections(db: &Db) {
    admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    ));
}

/// Every stored entry's index and request id, in index order.
fn stored(store: &mut PgStore) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    store
        .scan(0, &mut |r| {
            let e = Event::from_canonical(&r.event).unwrap();
            out.push((r.idx, e.request_id));
            Ok(true)
        })
        .unwrap();
    out
}

#[test]
fn a_store_whose_connection_is_killed_reconnects() {
    let Some(db) = Db::create() else { return };
    let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
    let mut store = PgStore::connect(&db.url, Some(keys.origin())).unwrap();
    let mut tree = store.load_tree().unwrap();
    store.append(&mut [event(0, 0).into()], &mut tree).unwrap();
    // Appends, reads and checkpoints each find their connection gone and go on over a new
    // one: a server restart no longer leaves the ledger failing until the gateway restarts.
    kill_connections(&db);
    let mut batch = [Encoded::new(event(0, 1)), Encoded::new(event(0, 2))];
    store.append(&mut batch, &mut tree).unwrap();
    assert_eq!((batch[0].index, batch[1].index), (1, 2));
    kill_connections(&db);
    assert!(store.latest_checkpoint().unwrap().is_none());
    kill_connections(&db);
    assert_eq!(stored(&mut store).len(), 3);
    assert_eq!(tree.root(), store.load_tree().unwrap().root());
}

#[test]
fn the_ledger_recovers_when_its_store_comes_back() {
    let Some(db) = Db::create() else { return };
    let keys = Arc::new(LedgerKeys::generate("pg.test/ledger").unwrap());
    let proxy = Proxy::start();
    let store = PgStore::connect(&proxy.url(&db), Some(keys.origin())).unwrap();
    let config = WriterConfig {
        checkpoint_every: Duration::from_millis(50),
        ..WriterConfig::default()
    };
    let ledger = Ledger::start(Box::new(store), keys, None, config).unwrap();
    let rt = rt();
    rt.block_on(ledger.append(event(0, 0))).unwrap();
    // The server goes away: connections are cut and new ones refused. The ledger fails closed.
    proxy.set(Mode::Refuse);
    kill_connections(&db);
    assert!(rt.block_on(ledger.append(event(0, 1))).is_err());
    assert!(!ledger.healthy());
    rt.block_on(ledger.enqueue(event(0, 2))).unwrap();
    // It comes back: the writer's probe reconnects, the held record is committed, traffic
    // resumes.
    proxy.set(Mode::Pass);
    let mut waited = 0;
    while !(ledger.healthy() && ledger.size() == 2) {
        assert!(waited < 200, "the ledger did not recover");
        std::thread::sleep(Duration::from_millis(25));
        waited += 1;
    }
    assert!(matches!(
        rt.block_on(ledger.append(event(0, 3))),
        Ok(Ack::Stored(2))
    ));
    ledger.close();
}

#[test]
fn a_commit_that_went_unanswered_is_looked_up_and_never_stored_twice() {
    for (mode, committed) in [(Mode::CutAfterCommit, true), (Mode::CutBeforeCommit, false)] {
        let Some(db) = Db::create() else { return };
        let keys = LedgerKeys::generate("pg.test/ledger").unwrap();
        let proxy = Proxy::start();
        let mut store = PgStore::connect(&proxy.url(&db), Some(keys.origin())).unwrap();
        let mut tree = store.load_tree().unwrap();
        proxy.set(mode);
        let mut batch = [Encoded::new(event(0, 0)), Encoded::new(event(0, 1))];
        assert!(
            store.append(&mut batch, &mut tree).is_err(),
            "{mode:?}: an unanswered commit is not acknowledged"
        );
        // The writer appends the batch again (from its spool or held records), then newer
        // events; the store looks the batch up first.
        let mut again = [
            Encoded::new(event(0, 0)),
            Encoded::new(event(0, 1)),
            Encoded::new(event(0, 2)),
        ];
        store.append(&mut again, &mut tree).unwrap();
        let indices: Vec<u64> = again.iter().map(|e| e.index).collect();
        assert_eq!(indices, [0, 1, 2], "{mode:?}");
        let ids: Vec<(u64, String)> = (0..3).map(|i| (i, format!("w0-{i}"))).collect();
        assert_eq!(stored(&mut store), ids, "{mode:?} (committed: {committed})");
        assert_eq!(tree.size(), 3);
        assert_eq!(tree.root(), store.load_tree().unwrap().root());
        // Once the batch was appended again, the same events are new events again.
        let mut later = [Encoded::new(event(0, 0))];
        store.append(&mut later, &mut tree).unwrap();
        assert_eq!(later[0].index, 3);
    }
}

/// What [`Proxy`] does to the connections through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Pass,
    /// Refuses new connections.
    Refuse,
    /// Passes the next `COMMIT` to the server, then cuts the connection before its answer.
    CutAfterCommit,
    /// Cuts the connection instead of passing the next `COMMIT`.
    CutBeforeCommit,
}

/// A TCP proxy in front of the server, for a server that goes away or a commit whose answer
/// is lost. Its URL turns TLS off, so it can see the `COMMIT`.
struct Proxy {
    port: u16,
    mode: Arc<std::sync::atomic::AtomicU8>,
}

impl Proxy {
    fn start() -> Self {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(Mode::Pass as u8));
        let shared = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if shared.load(SeqCst) == Mode::Refuse as u8 {
                    continue; // dropped: closed
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                pump(client, server, shared.clone());
            }
        });
        Self { port, mode }
    }

    fn url(&self, db: &Db) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, db.name
        )
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, SeqCst);
    }
}

use std::sync::atomic::Ordering::SeqCst;

/// Copies bytes both ways between a client and the server, cutting as `mode` says (a cut
/// happens once, then the mode is back to passing).
fn pump(
    client: std::net::TcpStream,
    server: std::net::TcpStream,
    mode: Arc<std::sync::atomic::AtomicU8>,
) {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    let swallow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut = |client: &std::net::TcpStream, server: &std::net::TcpStream| {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    };
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up_swallow = swallow.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            let chunk = &buf[..n];
            if chunk.windows(6).any(|w| w == b"COMMIT") {
                let m = mode.swap(Mode::Pass as u8, SeqCst);
                if m == Mode::CutBeforeCommit as u8 {
                    break;
                }
                if m == Mode::CutAfterCommit as u8 {
                    up_swallow.store(true, SeqCst);
                } else {
                    mode.store(m, SeqCst);
                }
            }
            if to_server.write_all(chunk).is_err() {
                break;
            }
        }
        cut(&from_client, &to_server);
    });
    let (mut from_server, mut to_client) = (server, client);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            if swallow.load(SeqCst) || to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        cut(&to_client, &from_server);
    });
}
