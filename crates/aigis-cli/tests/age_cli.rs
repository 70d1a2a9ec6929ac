//! `aigis keygen | encrypt | decrypt` as users run them, and interop with a real `rage`
//! (located by `AIGIS_RAGE` or `$CARGO_TARGET_DIR/tools/bin/rage`; skipped with a notice when
//! absent unless `AIGIS_REQUIRE_RAGE=1`, which `scripts/test` sets after installing it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::assigning_clones,
    clippy::format_collect,
    reason = "test code: a failed step should abort the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aigis-age-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn keygen(d: &Path, name: &str, pq: bool) -> (PathBuf, String) {
    let key = d.join(name);
    let mut args = vec!["keygen", "-o", s(&key)];
    if pq {
        args.push("--pq");
    }
    ok(&aigis(&args));
    let body = std::fs::read_to_string(&key).unwrap();
    let recipient = body
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (key, recipient)
}

#[test]
fn keygen_writes_age_keygen_layout() {
    let d = dir("keygen");
    let (key, recipient) = keygen(&d, "key.txt", false);
    let body = std::fs::read_to_string(&key).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines[0].starts_with("# created: 20") && lines[0].ends_with('Z'),
        "{body}"
    );
    assert!(recipient.starts_with("age1") && !recipient.starts_with("age1pq1"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = aigis(&["keygen", "-o", s(&key)]);
    assert!(
        !again.status.success(),
        "an existing key file must not be overwritten"
    );
    let y = ok(&aigis(&["keygen", "-y", s(&key)])).stdout.clone();
    assert_eq!(text(&y).trim(), recipient);

    let (pq_key, pq_recipient) = keygen(&d, "pq.txt", true);
    assert!(pq_recipient.starts_with("age1pq1"));
    assert!(
        std::fs::read_to_string(&pq_key)
            .unwrap()
            .contains("AGE-SECRET-KEY-PQ-1")
    );
    let y = ok(&aigis(&["keygen", "-y", s(&pq_key)])).stdout.clone();
    assert_eq!(text(&y).trim(), pq_recipient);
}

#[test]
fn encrypt_decrypt_with_mixed_identities_and_armor() {
    let d = dir("roundtrip");
    let (x_key, _) = keygen(&d, "x.txt", false);
    let (pq_key, pq_r) = keygen(&d, "pq.txt", true);
    let input = d.join("model.bin");
    std::fs::write(&input, plaintext(300_000)).unwrap();
    let recipients = d.join("recipients.txt");
    std::fs::write(&recipients, format!("# the team\n\n{pq_r}\n")).unwrap();
    let sealed = d.join("model.bin.age");
    ok(&aigis(&[
        "encrypt",
        "-R",
        s(&recipients),
        "-a",
        "-o",
        s(&sealed),
        s(&input),
    ]));
    assert!(
        std::fs::read_to_string(&sealed)
            .unwrap()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    );
    let out = d.join("out.bin");
    ok(&aigis(&[
        "decrypt",
        "-i",
        s(&x_key),
        "-i",
        s(&pq_key),
        "-o",
        s(&out),
        s(&sealed),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), plaintext(300_000));

    // Wrong identity: the error names the recipient types in the file.
    let wrong = aigis(&["decrypt", "-i", s(&x_key), s(&sealed)]);
    assert_eq!(wrong.status.code(), Some(1), "did not decrypt");
    assert!(
        text(&wrong.stderr).contains("mlkem768x25519"),
        "{}",
        text(&wrong.stderr)
    );
}

#[test]
fn mixing_pq_and_classical_needs_opt_in() {
    let d = dir("mix");
    let (_, x_r) = keygen(&d, "x.txt", false);
    let (_, pq_r) = keygen(&d, "pq.txt", true);
    let input = d.join("in");
    std::fs::write(&input, b"x").unwrap();
    let out = d.join("out.age");
    let refused = aigis(&["encrypt", "-r", &x_r, "-r", &pq_r, "-o", s(&out), s(&input)]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--allow-mixed-pq"));
    assert!(!out.exists());
    ok(&aigis(&[
        "encrypt",
        "-r",
        &x_r,
        "-r",
        &pq_r,
        "--allow-mixed-pq",
        "-o",
        s(&out),
        s(&input),
    ]));
}

#[test]
fn tampered_and_truncated_files_leave_no_output() {
    let d = dir("tamper");
    let (key, r) = keygen(&d, "k.txt", false);
    let input = d.join("in");
    std::fs::write(&input, plaintext(200_000)).unwrap();
    let sealed = d.join("in.age");
    ok(&aigis(&["encrypt", "-r", &r, "-o", s(&sealed), s(&input)]));
    let mut bytes = std::fs::read(&sealed).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 1;
    let bad = d.join("bad.age");
    std::fs::write(&bad, &bytes).unwrap();
    let out = d.join("out");
    let o = aigis(&["decrypt", "-i", s(&key), "-o", s(&out), s(&bad)]);
    assert_eq!(o.status.code(), Some(1), "did not decrypt");
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{} did not decrypt", bad.display())),
        "{err}"
    );
    assert!(
        err.contains("chunk 3") && err.contains("offset") && err.contains("modified"),
        "{err}"
    );
    assert!(!out.exists(), "no partial plaintext at the final path");
    assert!(std::fs::read_dir(&d).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".aigis-partial")
    }));

    let cut = d.join("cut.age");
    std::fs::write(
        &cut,
        &std::fs::read(&sealed).unwrap()[..n - (200_000 % 65_536) - 16],
    )
    .unwrap();
    let o = aigis(&["decrypt", "-i", s(&key), "-o", s(&out), s(&cut)]);
    assert_eq!(o.status.code(), Some(1), "did not decrypt");
    assert!(text(&o.stderr).contains("truncated"), "{}", text(&o.stderr));
    assert!(!out.exists());
    // A file that cannot be read was never tried: 2, naming it.
    let missing = d.join("missing.age");
    let o = aigis(&["decrypt", "-i", s(&key), s(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains(s(&missing)), "{}", text(&o.stderr));
}

#[test]
fn passphrases_and_protected_identity_files() {
    let d = dir("pass");
    let pass = d.join("pass.txt");
    std::fs::write(&pass, "correct horse battery\n").unwrap();
    let wrong = d.join("wrong.txt");
    std::fs::write(&wrong, "nope\n").unwrap();
    let input = d.join("in");
    std::fs::write(&input, b"secret weights").unwrap();
    let sealed = d.join("in.age");
    ok(&aigis(&[
        "encrypt",
        "--passphrase-file",
        s(&pass),
        "-o",
        s(&sealed),
        s(&input),
    ]));
    let o = ok(&aigis(&[
        "decrypt",
        "--passphrase-file",
        s(&pass),
        s(&sealed),
    ]))
    .stdout
    .clone();
    assert_eq!(o, b"secret weights");
    let bad = aigis(&["decrypt", "--passphrase-file", s(&wrong), s(&sealed)]);
    assert!(
        text(&bad.stderr).contains("wrong passphrase"),
        "{}",
        text(&bad.stderr)
    );

    // An identity file encrypted with a passphrase, as `age -p key.txt > key.txt.age` makes.
    let (key, r) = keygen(&d, "k.txt", true);
    let locked = d.join("k.txt.age");
    ok(&aigis(&[
        "encrypt",
        "--passphrase-file",
        s(&pass),
        "-a",
        "-o",
        s(&locked),
        s(&key),
    ]));
    let data = d.join("data.age");
    ok(&aigis(&["encrypt", "-r", &r, "-o", s(&data), s(&input)]));
    let o = aigis(&[
        "decrypt",
        "-i",
        s(&locked),
        "--identity-passphrase-file",
        s(&pass),
        s(&data),
    ]);
    assert_eq!(ok(&o).stdout, b"secret weights");
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
    eprintln!("notice: rage not found; skipping the rage interop tests");
    None
}

/// rage asks for passphrases through pinentry; this one speaks just enough Assuan to answer
/// GETPIN with `$AIGIS_TEST_PASSPHRASE`, which makes passphrase interop scriptable.
fn fake_pinentry(d: &Path) -> PathBuf {
    let p = d.join("fake-pinentry");
    std::fs::write(
        &p,
        "#!/bin/sh\necho 'OK ready'\nwhile IFS= read -r line; do\n  case \"$line\" in\n    GETPIN*) echo 'S PIN_REPEATED'; echo \"D $AIGIS_TEST_PASSPHRASE\"; echo OK ;;\n    BYE*) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

fn run_rage(rage: &Path, args: &[&str], pinentry: Option<(&Path, &str)>) -> Output {
    let mut cmd = Command::new(rage);
    cmd.args(args).stdin(Stdio::null());
    if let Some((program, pass)) = pinentry {
        cmd.env("PINENTRY_PROGRAM", program)
            .env("AIGIS_TEST_PASSPHRASE", pass);
    }
    cmd.output().unwrap()
}

#[test]
fn rage_interop_x25519_both_ways() {
    let Some(rage) = rage() else { return };
    let d = dir("rage-x25519");
    let (key, r) = keygen(&d, "k.txt", false);
    let input = d.join("in");
    std::fs::write(&input, plaintext(3 * 65_536 + 7)).unwrap();
    for armor in [false, true] {
        let ours = d.join(format!("ours-{armor}.age"));
        let mut args = vec!["encrypt", "-r", &r, "-o", s(&ours), s(&input)];
        if armor {
            args.insert(1, "-a");
        }
        ok(&aigis(&args));
        let out = d.join(format!("rage-out-{armor}"));
        ok(&run_rage(
            &rage,
            &["-d", "-i", s(&key), "-o", s(&out), s(&ours)],
            None,
        ));
        assert_eq!(std::fs::read(&out).unwrap(), plaintext(3 * 65_536 + 7));
    }
    // rage encrypts to our recipient (and to a rage-keygen key); we decrypt both.
    let rage_key = d.join("rage-key.txt");
    let keygen_bin = rage.with_file_name("rage-keygen");
    ok(&Command::new(&keygen_bin)
        .args(["-o", s(&rage_key)])
        .output()
        .unwrap());
    let theirs = d.join("theirs.age");
    ok(&run_rage(
        &rage,
        &[
            "-e",
            "-a",
            "-r",
            &r,
            "-i",
            s(&rage_key),
            "-o",
            s(&theirs),
            s(&input),
        ],
        None,
    ));
    let _ = &theirs;
    let rage_r = text(&ok(&aigis(&["keygen", "-y", s(&rage_key)])).stdout)
        .trim()
        .to_owned();
    let theirs2 = d.join("theirs2.age");
    ok(&run_rage(
        &rage,
        &["-e", "-r", &rage_r, "-o", s(&theirs2), s(&input)],
        None,
    ));
    for (file, identity) in [(&theirs, &key), (&theirs2, &rage_key)] {
        let o = ok(&aigis(&["decrypt", "-i", s(identity), s(file)]))
            .stdout
            .clone();
        assert_eq!(o, plaintext(3 * 65_536 + 7));
    }
}

#[test]
fn rage_interop_passphrase_both_ways() {
    let Some(rage) = rage() else { return };
    let d = dir("rage-scrypt");
    let pinentry = fake_pinentry(&d);
    let pass_text = "interop passphrase";
    let pass = d.join("pass.txt");
    std::fs::write(&pass, format!("{pass_text}\n")).unwrap();
    let input = d.join("in");
    std::fs::write(&input, plaintext(70_000)).unwrap();

    let ours = d.join("ours.age");
    ok(&aigis(&[
        "encrypt",
        "--passphrase-file",
        s(&pass),
        "-o",
        s(&ours),
        s(&input),
    ]));
    let out = d.join("rage-out");
    ok(&run_rage(
        &rage,
        &["-d", "-o", s(&out), s(&ours)],
        Some((&pinentry, pass_text)),
    ));
    assert_eq!(std::fs::read(&out).unwrap(), plaintext(70_000));
    let wrong = run_rage(
        &rage,
        &["-d", "-o", s(&d.join("x")), s(&ours)],
        Some((&pinentry, "wrong")),
    );
    assert!(
        !wrong.status.success(),
        "the fake pinentry really is consulted"
    );

    let theirs = d.join("theirs.age");
    ok(&run_rage(
        &rage,
        &["-e", "-p", "-o", s(&theirs), s(&input)],
        Some((&pinentry, pass_text)),
    ));
    let o = ok(&aigis(&[
        "decrypt",
        "--passphrase-file",
        s(&pass),
        s(&theirs),
    ]))
    .stdout
    .clone();
    assert_eq!(o, plaintext(70_000));
}

#[test]
fn scan_reads_an_encrypted_model_through_its_identity() {
    let d = dir("scan");
    let (key, recipient) = keygen(&d, "key.txt", true);
    // A protocol-2 pickle that calls os.system("id") when loaded.
    let evil = d.join("model.pkl");
    std::fs::write(
        &evil,
        b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
    )
    .unwrap();
    let sealed = d.join("model.pkl.age");
    ok(&aigis(&[
        "encrypt",
        "-r",
        &recipient,
        "-o",
        s(&sealed),
        s(&evil),
    ]));
    let blind = aigis(&["scan", s(&sealed)]);
    assert_eq!(blind.status.code(), Some(2), "{}", text(&blind.stdout));
    assert!(
        text(&blind.stdout).contains("age-encrypted"),
        "{}",
        text(&blind.stdout)
    );
    let seen = aigis(&["scan", "-i", s(&key), "--format", "json", s(&sealed)]);
    assert_eq!(seen.status.code(), Some(1), "{}", text(&seen.stdout));
    assert!(
        text(&seen.stdout).contains("AIG-PICKLE-DANGEROUS-GLOBAL"),
        "{}",
        text(&seen.stdout)
    );
    let (other, _) = keygen(&d, "other.txt", false);
    let wrong = aigis(&["scan", "-i", s(&other), s(&sealed)]);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong.stdout));
    assert!(
        text(&wrong.stdout).contains("cannot decrypt"),
        "{}",
        text(&wrong.stdout)
    );
}
