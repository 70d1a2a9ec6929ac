//! `[routes.model_check]` end to end through the `aigis` binary: a route serves a self-hosted
//! model only while its OpenSSF signature verifies over every file and the scan is clean,
//! checked at start and at every reload (SIGHUP). Generated keys and model, no peers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

fn aigis(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aigis {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running `aigis gateway` and everything it wrote on stderr.
struct Running {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Running {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aigis"))
            .args(["gateway", "--log-format", "text", "--config", s(config)])
            .env("AIGIS_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("aigis gateway on http://") {
                    let (public, admin) = rest.split_once(" (admin on http://").unwrap();
                    let _ = tx.send((
                        public.parse().unwrap(),
                        admin.trim_end_matches(')').parse().unwrap(),
                    ));
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok((public, admin)) = rx.recv_timeout(Duration::from_mins(2)) else {
            let _ = child.kill();
            panic!("the gateway did not start:\n{}", log.lock().unwrap());
        };
        Self {
            child,
            public,
            admin,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the gateway's log holds one of `needles` (the reader thread can lag the
    /// gateway on a loaded machine); panics with the log after 30 s.
    fn wait_log(&self, needles: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !needles.iter().any(|n| self.log().contains(n)) {
            assert!(
                Instant::now() < deadline,
                "no {needles:?} in:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `(status, body)` of a chat completion for `model`.
    fn chat(&self, model: &str) -> (u16, String) {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hello"}}]}}"#);
        http(self.public, "POST", "/v1/chat/completions", &body)
    }

    /// Sends SIGHUP and waits for the `n`th successful reload in the metrics.
    fn reload(&self, n: u32) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let want = format!("aigis_config_reloads_total{{result=\"ok\"}} {n}");
        let deadline = Instant::now() + Duration::from_mins(2);
        while !http(self.admin, "GET", "/metrics", "").1.contains(&want) {
            assert!(Instant::now() < deadline, "no reload:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_mins(1))).unwrap();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn sign(model: &Path, key: &Path) {
    aigis(&[
        "sign",
        "key",
        s(model),
        "--private-key",
        s(key),
        "--signature",
        s(&model.join("model.sig")),
    ]);
}

#[test]
fn a_route_serves_its_model_only_while_signature_and_scan_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let model = t.join("llama");
    std::fs::create_dir_all(model.join("sub")).unwrap();
    std::fs::write(model.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    std::fs::write(model.join("sub/weights.bin"), [7u8; 8192]).unwrap();
    let key = t.join("signer.key");
    aigis(&["keygen", "--sign", "p256", "-o", s(&key)]);
    sign(&model, &key);
    let config = t.join("aigis.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [[upstreams]]\nname = \"local\"\nkind = \"echo\"\n\n\
         [[routes]]\nname = \"echo\"\nmodels = [\"echo\"]\nupstream = \"local\"\n\n\
         [[routes]]\nname = \"llama\"\nmodels = [\"llama\"]\nupstream = \"local\"\n\
         [routes.model_check]\ndir = \"llama\"\nkeys = [\"file:signer.key.pub\"]\n",
    )
    .unwrap();

    // A signed, clean model (signature inside the directory, the default) routes.
    let gw = Running::start(&config);
    let (status, body) = gw.chat("llama");
    assert_eq!(status, 200, "{body}\n{}", gw.log());
    gw.wait_log(&["model check passed"]);

    // A tampered file: refused at the next reload, with the reason in the log only.
    std::fs::write(model.join("sub/weights.bin"), [8u8; 8192]).unwrap();
    gw.reload(1);
    let (status, body) = gw.chat("llama");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"code\":\"model_unverified\""), "{body}");
    assert!(!body.contains("weights.bin"), "{body}");
    gw.wait_log(&[
        "hash mismatch for \\\"sub/weights.bin\\\"",
        "hash mismatch for \"sub/weights.bin\"",
    ]);
    assert_eq!(gw.chat("echo").0, 200, "other routes serve on");
    let metrics = http(gw.admin, "GET", "/metrics", "").1;
    assert!(
        metrics.contains("aigis_model_checks_total{route=\"llama\",result=\"failed\"} 1"),
        "{metrics}"
    );

    // Re-signed: routable again after a reload.
    sign(&model, &key);
    gw.reload(2);
    assert_eq!(gw.chat("llama").0, 200, "{}", gw.log());

    // A malicious pickle in a validly signed directory: refused by the scan.
    std::fs::write(model.join("evil.pkl"), b"cos\nsystem\n(S'id'\ntR.").unwrap();
    sign(&model, &key);
    gw.reload(3);
    assert_eq!(gw.chat("llama").0, 503);
    gw.wait_log(&["scan is not clean"]);
    drop(gw);

    // At start too: the model is still refused, the gateway starts with the route disabled.
    let gw = Running::start(&config);
    assert_eq!(gw.chat("llama").0, 503);
    assert_eq!(gw.chat("echo").0, 200);
}
