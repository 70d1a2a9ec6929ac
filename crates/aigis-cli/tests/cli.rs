//! The `aigis` binary as users run it: exit codes, messages and the shipped examples.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_shipped_example_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = aigis(&["config", "check", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), stdout(&out));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn config_check_names_key_line_and_hint() {
    let path = temp_file(
        "bad.toml",
        "[server]\nlisten = 12\n\n[[upstreams]]\nname = \"o\"\nkind = \"openai\"\n",
    );
    let out = aigis(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("line 2: error: `server.listen`"), "{text}");
    assert!(text.contains("hint: an address in quotes"), "{text}");
    assert!(
        text.contains("line 4: error: `upstreams[0].base_url`"),
        "{text}"
    );

    let out = aigis(&[
        "config",
        "check",
        "--format",
        "json",
        path.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["diagnostics"][0]["path"], "server.listen");
    assert_eq!(json["diagnostics"][0]["line"], 2);
}

#[test]
fn unset_secret_is_a_warning_unless_strict() {
    let path = temp_file(
        "warn.toml",
        "[[upstreams]]\nname = \"o\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key = \"env:AIGIS_CLI_TEST_UNSET\"\n\n[[routes]]\nname = \"r\"\nmodels = [\"m\"]\nupstream = \"o\"\n",
    );
    let lenient = aigis(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(lenient.status.code(), Some(0), "{}", stdout(&lenient));
    assert!(stdout(&lenient).contains("warning"));
    let strict = aigis(&["config", "check", "--strict", path.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn unreadable_input_exits_2() {
    let out = aigis(&["config", "check", "/nonexistent/aigis.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = aigis(&["gateway", "--config", "/nonexistent/aigis.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_teaches() {
    let out = aigis(&["gateway", "--help"]);
    let text = stdout(&out);
    assert!(text.contains("embedded quick-start config"), "{text}");
    assert!(text.contains("SIGHUP"), "{text}");
}
