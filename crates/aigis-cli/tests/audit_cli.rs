//! `aigis audit …` as users run it: init prints the verifier keys, verify passes a clean log
//! and names the first bad entry of a tampered one (exit 1), prove + verify-receipt work with
//! only the public keys, export writes JSON lines, OCSF and CEF.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    reason = "test code: one scenario reads top to bottom"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use aigis_ledger::event::GuardFinding;
use aigis_ledger::store::sqlite::SqliteStore;
use aigis_ledger::{Event, EventKind, Ledger, LedgerKeys, WriterConfig};

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "aigis-audit-cli-{}-{}",
        std::process::id(),
        aigis_ledger::now_ms()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `n` events into `db` with the key at `key`.
fn fill(db: &Path, key: &Path, n: u64) {
    let keys = Arc::new(LedgerKeys::load(key).unwrap());
    let store = SqliteStore::open(db, Some(keys.origin())).unwrap();
    let ledger = Ledger::start(Box::new(store), keys, None, WriterConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..n {
            let mut e = Event::new(
                EventKind::AiCall,
                &format!("req-{i}"),
                "chat.completions",
                1_764_374_400_000 + i * 1000,
            );
            e.principal = Some("key:bot".into());
            e.status = 200;
            let ip = if i % 2 == 0 {
                "203.0.113.7"
            } else {
                "2001:db8::7"
            };
            e.client_ip = Some(ip.into());
            if i == 3 {
                e.request_findings.push(GuardFinding {
                    kind: "injection".into(),
                    action: Some("block".into()),
                    span: None,
                    score_milli: Some(970),
                });
                e.status = 400;
            }
            ledger.append(e).await.unwrap();
        }
        let mut admin = Event::new(EventKind::Admin, "op-1", "keys.create", 1_764_374_500_000);
        admin.principal = Some("key:admin".into());
        admin.target = Some("ci-bot".into());
        ledger.append(admin).await.unwrap();
    });
    ledger.close();
}

#[test]
fn audit_commands_end_to_end() {
    let dir = tempdir();
    let key = dir.join("ledger.key");
    let db = dir.join("ledger.db");
    let (key_s, store) = (key.to_str().unwrap(), format!("sqlite:{}", db.display()));

    let out = aigis(&[
        "audit",
        "init",
        "--key",
        key_s,
        "--origin",
        "cli.test/ledger",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vkeys = stdout(&out);
    assert!(vkeys.starts_with("cli.test/ledger+"), "{vkeys}");
    assert_eq!(
        std::fs::read_to_string(dir.join("ledger.key.pub")).unwrap(),
        vkeys
    );
    assert_eq!(
        aigis(&["audit", "init", "--key", key_s]).status.code(),
        Some(2),
        "never overwrites"
    );
    fill(&db, &key, 10);

    let pubkeys = dir.join("ledger.key.pub");
    let pubkeys_s = pubkeys.to_str().unwrap();
    let out = aigis(&[
        "audit", "verify", "--store", &store, "--vkeys", pubkeys_s, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["ok"].as_bool(), report["entries"].as_u64()),
        (Some(true), Some(11))
    );

    let out = aigis(&["audit", "tail", "--store", &store, "-n", "3"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stdout(&out).contains("keys.create"));

    let receipt = dir.join("receipt.json");
    let out = aigis(&[
        "audit",
        "prove",
        "--store",
        &store,
        "--request-id",
        "req-7",
        "-o",
        receipt.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aigis(&[
        "audit",
        "verify-receipt",
        receipt.to_str().unwrap(),
        "--vkeys",
        pubkeys_s,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("VALID: request req-7 is entry 7"),
        "{}",
        stdout(&out)
    );
    let forged = std::fs::read_to_string(&receipt)
        .unwrap()
        .replace("key:bot", "key:eve");
    std::fs::write(&receipt, forged).unwrap();
    let out = aigis(&[
        "audit",
        "verify-receipt",
        receipt.to_str().unwrap(),
        "--vkeys",
        pubkeys_s,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["valid"],
        false
    );

    let out = aigis(&["audit", "export", "--store", &store, "--format", "ocsf"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let classes: Vec<u64> = lines
        .iter()
        .map(|l| l["class_uid"].as_u64().unwrap())
        .collect();
    assert_eq!(classes.iter().filter(|c| **c == 6003).count(), 10);
    assert_eq!(
        classes.iter().filter(|c| **c == 2004).count(),
        1,
        "one detection finding"
    );
    assert_eq!(
        classes.iter().filter(|c| **c == 3001).count(),
        1,
        "key creation is an account change"
    );
    let call = lines.iter().find(|l| l["class_uid"] == 6003).unwrap();
    assert_eq!(call["src_endpoint"]["ip"], "203.0.113.7", "{call}");
    let out = aigis(&[
        "audit",
        "export",
        "--store",
        &store,
        "--format",
        "cef",
        "--since",
        "2025-11-29T00:00:05Z",
    ]);
    let cef = stdout(&out);
    assert!(
        cef.lines().all(|l| l.starts_with("CEF:0|aigis|aigis|")),
        "{cef}"
    );
    assert_eq!(cef.lines().count(), 6, "--since filters: {cef}");
    assert!(cef.contains("src=203.0.113.7"), "{cef}");
    assert!(cef.contains("c6a2=2001:db8::7 c6a2Label=source"), "{cef}");
    let out = aigis(&["audit", "export", "--store", &store]);
    assert_eq!(stdout(&out).lines().count(), 11);

    let out = aigis(&[
        "audit", "prune", "--store", &store, "--before", "1d", "--format", "json",
    ]);
    assert!(out.status.success());

    // Tamper with one row: exit 1 and the entry is named.
    let conn = rusqlite_free_update(&db);
    assert!(conn);
    let out = aigis(&["audit", "verify", "--store", &store, "--vkeys", pubkeys_s]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("first bad entry: 5"),
        "{}",
        stdout(&out)
    );
    // Unreadable input: exit 2.
    assert_eq!(
        aigis(&[
            "audit",
            "verify",
            "--store",
            "sqlite:/nonexistent/x.db",
            "--vkeys",
            pubkeys_s
        ])
        .status
        .code(),
        Some(2)
    );
    // Clean-up only: a store file still being closed can make the directory briefly non-empty.
    std::fs::remove_dir_all(&dir).ok();
}

/// Edits entry 5 through the ledger crate's raw access (the test-util feature).
fn rusqlite_free_update(db: &Path) -> bool {
    let store = SqliteStore::open_existing(db).unwrap();
    store
        .connection()
        .execute("UPDATE entries SET event = CAST(replace(CAST(event AS TEXT), 'key:bot', 'key:eve') AS BLOB) WHERE idx = 5", [])
        .unwrap()
        == 1
}

#[test]
fn verify_receipt_needs_keys_and_a_readable_file() {
    let out = aigis(&[
        "audit",
        "verify-receipt",
        "/nonexistent.json",
        "--vkey",
        "x+00000000+AQ==",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = aigis(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

fn rage() -> Option<PathBuf> {
    let candidate = std::env::var_os("AIGIS_RAGE")
        .map(PathBuf::from)
        .or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                PathBuf::from,
            );
            Some(target.join("tools/bin/rage"))
        });
    if let Some(p) = candidate.filter(|p| p.is_file()) {
        return Some(p);
    }
    assert!(
        std::env::var("AIGIS_REQUIRE_RAGE").as_deref() != Ok("1"),
        "AIGIS_REQUIRE_RAGE=1 but rage was not found (set AIGIS_RAGE or run scripts/test)"
    );
    eprintln!("notice: rage not found; skipping the rage part of the content test");
    None
}

/// Captured content as an auditor reads it: `aigis audit content` with the tenant's identity
/// (not another's), each blob a plain age file stock `rage` decrypts, and the log verifying
/// after a tenant's content is shredded and after `prune`.
#[test]
fn captured_content_is_read_with_the_tenant_identity_and_shredding_keeps_the_log() {
    use aigis_crypto::age::{Identity, PqIdentity, X25519Identity};
    use aigis_ledger::content::{ContentStore, blob_path};

    // Its own folder: `tempdir()` is per millisecond, and another test removes its own.
    let dir = std::env::temp_dir().join(format!(
        "aigis-audit-content-{}-{}",
        std::process::id(),
        aigis_ledger::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ledger.key");
    let db = dir.join("ledger.db");
    let content_dir = dir.join("content");
    let (key_s, store) = (key.to_str().unwrap(), format!("sqlite:{}", db.display()));
    let content_s = content_dir.to_str().unwrap();
    assert!(aigis(&["audit", "init", "--key", key_s]).status.success());

    let team_a = X25519Identity::generate().unwrap();
    let team_b = PqIdentity::generate().unwrap();
    let (a_file, b_file) = (dir.join("team-a.txt"), dir.join("team-b.txt"));
    std::fs::write(&a_file, format!("{}\n", team_a.to_bech32().as_str())).unwrap();
    std::fs::write(&b_file, format!("{}\n", team_b.to_bech32().as_str())).unwrap();
    let recipients = [
        ("team-a", Identity::X25519(team_a)),
        ("team-b", Identity::Pq(team_b)),
    ]
    .into_iter()
    .map(|(t, i)| (t.to_owned(), vec![i.to_recipient().unwrap().unwrap()]))
    .collect();
    let sealer = ContentStore::new(content_dir.clone(), recipients);

    let ledger_keys = Arc::new(LedgerKeys::load(&key).unwrap());
    let request = br#"{"model":"m","messages":[{"role":"user","content":"quarterly numbers"}]}"#;
    let response = br#"{"choices":[{"message":{"content":"up 4%"}}]}"#;
    let mut refs = Vec::new();
    let ledger = Ledger::start(
        Box::new(SqliteStore::open(&db, Some(ledger_keys.origin())).unwrap()),
        ledger_keys.clone(),
        None,
        WriterConfig::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (id, tenant, time) in [("req-a", "team-a", 1_000), ("req-b", "team-b", 2_000)] {
        let mut e = Event::new(EventKind::AiCall, id, "chat_completions", time);
        e.prompt_digest = Some(ledger_keys.content().digest("prompt", id, request));
        e.response_digest = Some(ledger_keys.content().digest("response", id, response));
        let reference = sealer.seal(tenant, time, request, response).unwrap();
        e.content = Some(reference.clone());
        refs.push(reference);
        rt.block_on(ledger.append(e)).unwrap();
    }
    ledger.close();

    let read = |id: &str, identity: &Path, extra: &[&str]| {
        let mut args = vec![
            "audit",
            "content",
            "--store",
            &store,
            "--key",
            key_s,
            "--content-dir",
            content_s,
            "--request-id",
            id,
            "-i",
            identity.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aigis(&args)
    };
    let out = read("req-a", &a_file, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("quarterly numbers") && text.contains("up 4%"),
        "{text}"
    );
    assert_eq!(
        text.matches("matches the logged digest").count(),
        2,
        "{text}"
    );
    // Another tenant's identity cannot read it.
    let out = read("req-a", &b_file, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no identity matched"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One part, byte for byte.
    let part = dir.join("response.json");
    let out = read(
        "req-b",
        &b_file,
        &["--part", "response", "-o", part.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(&part).unwrap(), response);

    // Each blob is a plain age file: stock rage decrypts it with the tenant's identity.
    if let Some(rage) = rage() {
        let blob = blob_path(&content_dir, &refs[0], "request").unwrap();
        let out = Command::new(rage)
            .args(["-d", "-i", a_file.to_str().unwrap(), blob.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, request);
    }

    // Crypto-shredding team-a: its content is gone, the log still verifies.
    std::fs::remove_dir_all(content_dir.join("team-a")).unwrap();
    let verify = || aigis(&["audit", "verify", "--store", &store, "--key", key_s]);
    assert_eq!(verify().status.code(), Some(0), "{}", stdout(&verify()));
    assert_eq!(read("req-a", &a_file, &[]).status.code(), Some(2));
    // Prune removes team-b's (older than the cut-off) blobs, never entries.
    let out = aigis(&[
        "audit",
        "prune",
        "--store",
        &store,
        "--content-dir",
        content_s,
        "--before",
        "2020-01-01",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    let pruned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pruned["removed_content"], 2);
    assert_eq!(read("req-b", &b_file, &[]).status.code(), Some(2));
    let out = aigis(&[
        "audit", "verify", "--store", &store, "--key", key_s, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entries"], 2);
    std::fs::remove_dir_all(&dir).ok();
}
