//! `deps --online`: the OSV API client against a mock OSV service on 127.0.0.1 (a std
//! `TcpListener` serving the hand-written records of `tests/fixtures/deps-online/service`), no
//! internet. The mock names every advisory of a package whatever the version, as a lenient
//! service may, so the findings show aigis's own range evaluation; it pages results (one id per
//! page) so page tokens are followed; it logs each request so batching and the per-run record
//! cache are checked.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on broken fixtures or unexpected results"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aigis_supply::deps::markers::Environment;
use aigis_supply::deps::online::{Online, OnlineError};
use aigis_supply::deps::{Database, DbError, ScanOptions, ScanResult, db, scan};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deps-online")
}

/// How the mock misbehaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// `querybatch` answers 503.
    Unavailable,
    /// `querybatch` never answers.
    Hang,
    /// Records are answered with 9 MiB of JSON.
    Huge,
    /// `querybatch` answers with fewer results than queries.
    Short,
}

struct Mock {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn records() -> BTreeMap<String, serde_json::Value> {
    std::fs::read_dir(fixtures().join("service"))
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            (value["id"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

fn mock(mode: Mode) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let records = Arc::new(records());
    let shared = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (log, records) = (Arc::clone(&shared), Arc::clone(&records));
            std::thread::spawn(move || serve(stream, mode, &log, &records));
        }
    });
    Mock { url, log }
}

/// One request per connection (`Connection: close`).
fn serve(
    stream: TcpStream,
    mode: Mode,
    log: &Mutex<Vec<String>>,
    records: &BTreeMap<String, serde_json::Value>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, answer) = match (method, path) {
        ("POST", "/v1/querybatch") => {
            let query: serde_json::Value = serde_json::from_slice(&body).unwrap();
            log.lock()
                .unwrap()
                .push(format!("batch {}", query["queries"]));
            match mode {
                Mode::Unavailable => (503, "{\"message\": \"overloaded\"}".to_owned()),
                Mode::Hang => {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                }
                Mode::Short => (200, "{\"results\": []}".to_owned()),
                Mode::Normal | Mode::Huge => (200, batch(&query, records)),
            }
        }
        ("GET", p) if p.starts_with("/v1/vulns/") => {
            let id = &p["/v1/vulns/".len()..];
            log.lock().unwrap().push(format!("get {id}"));
            match records.get(id) {
                Some(_) if mode == Mode::Huge => (
                    200,
                    format!(
                        "{{\"id\": \"{id}\", \"details\": \"{}\"}}",
                        "x".repeat(9 << 20)
                    ),
                ),
                Some(record) => (200, record.to_string()),
                None => (404, "{\"message\": \"Bug not found.\"}".to_owned()),
            }
        }
        _ => (404, "{}".to_owned()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// Every advisory naming the package (ecosystem and exact name), one id per page.
fn batch(query: &serde_json::Value, records: &BTreeMap<String, serde_json::Value>) -> String {
    let results: Vec<serde_json::Value> = query["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let ids: Vec<&String> = records
                .iter()
                .filter(|(_, r)| {
                    r["affected"].as_array().unwrap().iter().any(|a| {
                        a["package"]["ecosystem"] == q["package"]["ecosystem"]
                            && a["package"]["name"] == q["package"]["name"]
                    })
                })
                .map(|(id, _)| id)
                .collect();
            let page: usize = q["page_token"]
                .as_str()
                .map_or(0, |t| t.trim_start_matches("page-").parse().unwrap());
            let mut result = serde_json::json!({});
            if let Some(id) = ids.get(page) {
                result["vulns"] =
                    serde_json::json!([{"id": id, "modified": "2026-11-01T00:00:00Z"}]);
            }
            if page + 1 < ids.len() {
                result["next_page_token"] = format!("page-{}", page + 1).into();
            }
            result
        })
        .collect();
    serde_json::json!({ "results": results }).to_string()
}

fn options(url: &str) -> ScanOptions {
    let mut online = Online::new(url).unwrap();
    online.batch = 2;
    online.timeout = Duration::from_secs(2);
    ScanOptions {
        ignores: Vec::new(),
        now: db::now_secs(),
        typosquats: false,
        environment: Environment::default(),
        online: Some(online),
    }
}

fn project() -> Vec<PathBuf> {
    vec![fixtures().join("project")]
}

fn findings(result: &ScanResult) -> BTreeSet<String> {
    result
        .vulnerable
        .iter()
        .map(|v| {
            format!(
                "{}@{} {} fix {}",
                v.name,
                v.version,
                v.vulnerability.ids.join("+"),
                v.vulnerability.fixed.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

fn local_db(dir: &Path) -> Database {
    db::import(&[fixtures().join("local")], dir).unwrap();
    Database::open(dir).unwrap()
}

#[test]
fn online_only_finds_what_the_service_names_and_aigis_evaluates() {
    let mock = mock(Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let database = Database::online_only(&dir.path().join("none"));
    let result = scan(&project(), &database, &options(&mock.url)).unwrap();
    assert_eq!(
        findings(&result),
        BTreeSet::from([
            // Two records sharing CVE-TEST-0001: one finding; 0003 (3.0 to 3.1) does not
            // affect 2.19.0 although the mock named it.
            "requests@2.19.0 GHSA-test-0002+PYSEC-TEST-0001 fix 2.20.0".to_owned(),
            // The crate's name went out as the lockfile spells it (async_pipe).
            "async_pipe@0.3.1 RUSTSEC-TEST-0004 fix 0.3.2".to_owned(),
            // jinja2's only served record is withdrawn; flask has none.
        ])
    );
    let summary = result.online.as_ref().unwrap();
    assert_eq!(summary.queried, 4, "requests, jinja2, flask, async_pipe");
    assert_eq!(summary.records, 5, "0001 to 0005");
    assert_eq!(summary.withdrawn, 1);

    let log = mock.log.lock().unwrap().clone();
    let batches: Vec<&String> = log.iter().filter(|l| l.starts_with("batch")).collect();
    // Batches of 2 (4 queries: 2 requests), then a page-2 and a page-3 round for requests.
    assert_eq!(batches.len(), 4, "{batches:#?}");
    assert!(
        batches[1].contains("\"name\":\"async_pipe\""),
        "{batches:#?}"
    );
    assert!(
        batches[2].contains("\"page_token\":\"page-1\""),
        "{batches:#?}"
    );
    assert!(
        batches[3].contains("\"page_token\":\"page-2\""),
        "{batches:#?}"
    );
    // Each record fetched once, though requests names three and several queries share them.
    let gets: Vec<&String> = log.iter().filter(|l| l.starts_with("get")).collect();
    let distinct: BTreeSet<&&String> = gets.iter().collect();
    assert_eq!(gets.len(), 5, "{gets:?}");
    assert_eq!(distinct.len(), 5);
}

#[test]
fn online_answers_merge_with_the_local_database() {
    let mock = mock(Mode::Normal);
    let dir = tempfile::tempdir().unwrap();
    let database = local_db(dir.path());
    let offline = ScanOptions {
        online: None,
        ..options(&mock.url)
    };
    let local = scan(&project(), &database, &offline).unwrap();
    assert_eq!(
        findings(&local),
        BTreeSet::from([
            "requests@2.19.0 PYSEC-TEST-0001 fix 2.20.0".to_owned(),
            "jinja2@2.10 PYSEC-TEST-0006 fix 2.10.1".to_owned(),
        ])
    );
    assert!(mock.log.lock().unwrap().is_empty(), "offline asks nobody");
    let both = scan(&project(), &database, &options(&mock.url)).unwrap();
    assert_eq!(
        findings(&both),
        BTreeSet::from([
            "requests@2.19.0 GHSA-test-0002+PYSEC-TEST-0001 fix 2.20.0".to_owned(),
            "jinja2@2.10 PYSEC-TEST-0006 fix 2.10.1".to_owned(),
            "async_pipe@0.3.1 RUSTSEC-TEST-0004 fix 0.3.2".to_owned(),
        ])
    );
}

fn online_error(result: Result<ScanResult, DbError>) -> OnlineError {
    match result {
        Err(DbError::Online(e)) => e,
        Err(other) => panic!("expected an online error, got {other}"),
        Ok(_) => panic!("expected an online error, got a result"),
    }
}

#[test]
fn an_unreachable_or_failing_service_is_an_error_not_a_clean_scan() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::online_only(&dir.path().join("none"));

    // Nothing listens: the port of a listener that was closed.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = online_error(scan(&project(), &database, &options(&url)));
    assert!(
        error.message.contains("cannot reach the service"),
        "{error}"
    );
    assert!(error.to_string().contains("/v1/querybatch"), "{error}");

    let unavailable = mock(Mode::Unavailable);
    let error = online_error(scan(&project(), &database, &options(&unavailable.url)));
    assert!(error.message.contains("HTTP 503"), "{error}");
    assert!(error.message.contains("overloaded"), "{error}");

    let hang = mock(Mode::Hang);
    let error = online_error(scan(&project(), &database, &options(&hang.url)));
    assert!(
        error.message.contains("no complete answer within 2 s"),
        "{error}"
    );

    let huge = mock(Mode::Huge);
    let error = online_error(scan(&project(), &database, &options(&huge.url)));
    assert!(error.message.contains("answer larger than"), "{error}");
    assert!(error.url.contains("/v1/vulns/"), "{error}");

    let short = mock(Mode::Short);
    let error = online_error(scan(&project(), &database, &options(&short.url)));
    assert!(error.message.contains("0 results for 2 queries"), "{error}");
}

#[test]
fn service_urls_are_checked() {
    for bad in [
        "api.osv.dev",
        "ftp://api.osv.dev",
        "https://",
        "https://a b",
        "https://x/?q",
    ] {
        let error = Online::new(bad).unwrap_err();
        assert!(error.to_string().contains(bad.trim()), "{error}");
    }
    let online = Online::new("https://api.osv.dev/").unwrap();
    assert_eq!(online.url(), "https://api.osv.dev");
}
