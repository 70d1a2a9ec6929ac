//! `[routes.model_check]`: a route whose self-hosted model fails its check is not routable
//! (503 `model_unverified`, logged and counted), the rest of the gateway serves on, the check
//! runs again at every reload, `on_failure = "refuse-start"` refuses the configuration, and
//! without a checker the route fails closed. The real signature and scan check is exercised
//! end to end through the `aigis` binary (crates/aigis-cli/tests/gateway_model_check.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aigis_gateway::config::{ModelCheckSpec, ModelTrust, OnModelFailure};
use aigis_gateway::{Gateway, ModelCheck, StartError};
use support::*;

const ECHO: &str = "[[upstreams]]\nname = \"echo\"\nkind = \"echo\"\n";

/// A checker whose verdict the test flips; it records every spec it was asked about.
#[derive(Default)]
struct Switch {
    pass: AtomicBool,
    calls: AtomicUsize,
    seen: Mutex<Vec<ModelCheckSpec>>,
}

impl ModelCheck for Switch {
    fn check(&self, spec: &ModelCheckSpec) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(spec.clone());
        if self.pass.load(Ordering::SeqCst) {
            Ok("verified".into())
        } else {
            Err("hash mismatch for \"weights.bin\"".into())
        }
    }
}

/// Two echo routes: `plain` (model `echo`) and `checked` (model `llama`, with a model check).
fn config(dir: &Path, check_extra: &str) -> String {
    std::fs::create_dir_all(dir.join("model")).unwrap();
    std::fs::write(dir.join("signer.pub"), "not read by the test checker").unwrap();
    format!(
        "{SERVER}{ECHO}{}{}[routes.model_check]\ndir = \"model\"\nkeys = [\"file:signer.pub\"]\n{check_extra}",
        route("plain", "[\"echo\"]", "\"echo\""),
        route("checked", "[\"llama\"]", "\"echo\""),
    )
}

async fn start(
    dir: &Path,
    toml: &str,
    checker: Option<Arc<Switch>>,
) -> Result<Gateway, StartError> {
    let file = dir.join("aigis.toml");
    std::fs::write(&file, toml).unwrap();
    let loaded = aigis_gateway::config::load(&file, false).unwrap();
    let checker = checker.map(|c| c as Arc<dyn ModelCheck>);
    Gateway::start_with(loaded.config, Some((file, false)), checker).await
}

/// The model ids `GET /v1/models` lists.
async fn listed(a: std::net::SocketAddr) -> Vec<String> {
    let list = get(a, "/v1/models").await;
    assert_eq!(list.status, 200, "{}", list.body);
    list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_failed_model_disables_only_its_route_until_a_reload_verifies_it() {
    let d = tempdir("modelcheck");
    let switch = Arc::new(Switch::default());
    let gw = start(&d, &config(&d, ""), Some(switch.clone()))
        .await
        .unwrap();
    let a = gw.public_addr();

    let refused = post(a, "/v1/chat/completions", &chat("llama", false)).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.error_code(), "model_unverified");
    assert_eq!(refused.json()["error"]["param"], "model");
    // The reason (file names, paths) is for the operator's log only.
    assert!(!refused.body.contains("weights.bin"), "{}", refused.body);
    assert!(
        !refused.body.contains(d.to_str().unwrap()),
        "{}",
        refused.body
    );
    let streamed = post(a, "/v1/chat/completions", &chat("llama", true)).await;
    assert_eq!(streamed.status, 503);
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo", false))
            .await
            .status,
        200,
        "other routes serve on"
    );
    assert_eq!(
        listed(a).await,
        ["echo"],
        "an unverified model is not listed"
    );
    assert_eq!(get(a, "/v1/models/llama").await.status, 404);
    let metrics = gw.metrics();
    assert!(
        metrics.contains("aigis_model_checks_total{route=\"checked\",result=\"failed\"} 1"),
        "{metrics}"
    );

    // The spec the checker saw: paths resolved from the config's folder, defaults applied.
    let spec = switch.seen.lock().unwrap()[0].clone();
    assert_eq!(spec.dir, d.join("model"));
    assert_eq!(spec.signature, d.join("model").join("model.sig"));
    assert_eq!(spec.trust, ModelTrust::Keys(vec![d.join("signer.pub")]));
    assert!(spec.scan && !spec.require_pq);
    assert_eq!(spec.on_failure, OnModelFailure::DisableRoute);

    switch.pass.store(true, Ordering::SeqCst);
    gw.reload().await.unwrap();
    assert_eq!(
        switch.calls.load(Ordering::SeqCst),
        2,
        "checked again at reload"
    );
    let served = post(a, "/v1/chat/completions", &chat("llama", false)).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(listed(a).await, ["echo", "llama"]);
    assert!(
        gw.metrics()
            .contains("aigis_model_checks_total{route=\"checked\",result=\"verified\"} 1")
    );

    // And back: a model that stops verifying is disabled at the next reload.
    switch.pass.store(false, Ordering::SeqCst);
    gw.reload().await.unwrap();
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("llama", false))
            .await
            .status,
        503
    );
    gw.shutdown().await;
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn refuse_start_refuses_the_configuration_at_start_and_at_reload() {
    let d = tempdir("modelcheck-refuse");
    let toml = config(&d, "on_failure = \"refuse-start\"\n");
    let switch = Arc::new(Switch::default());
    let err = start(&d, &toml, Some(switch.clone())).await.err().unwrap();
    assert!(matches!(err, StartError::ModelCheck { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("route `checked`") && text.contains("weights.bin"),
        "{text}"
    );

    switch.pass.store(true, Ordering::SeqCst);
    let gw = start(&d, &toml, Some(switch.clone())).await.unwrap();
    let a = gw.public_addr();
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("llama", false))
            .await
            .status,
        200
    );
    switch.pass.store(false, Ordering::SeqCst);
    let err = gw.reload().await.unwrap_err();
    assert!(matches!(err, StartError::ModelCheck { .. }), "{err}");
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("llama", false))
            .await
            .status,
        200,
        "the previous configuration keeps serving"
    );
    gw.shutdown().await;
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn without_a_checker_the_route_fails_closed() {
    let d = tempdir("modelcheck-none");
    let gw = start(&d, &config(&d, ""), None).await.unwrap();
    let a = gw.public_addr();
    let refused = post(a, "/v1/chat/completions", &chat("llama", false)).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.error_code(), "model_unverified");
    assert_eq!(
        post(a, "/v1/chat/completions", &chat("echo", false))
            .await
            .status,
        200
    );
    gw.shutdown().await;
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn model_check_config_errors_name_the_key() {
    let d = tempdir("modelcheck-config");
    std::fs::write(d.join("signer.pub"), "x").unwrap();
    let errors = |check: &str| -> Vec<String> {
        let toml = format!(
            "{SERVER}{ECHO}{}[routes.model_check]\n{check}",
            route("r", "[\"m\"]", "\"echo\"")
        );
        match aigis_gateway::config::parse(&toml, &d, false) {
            Ok(_) => Vec::new(),
            Err(diags) => diags.iter().map(ToString::to_string).collect(),
        }
    };
    let all = |check: &str| errors(check).join("\n");

    let text = all("dir = \".\"\nkeys = [\"file:signer.pub\"]\nsignatur = \"x.sig\"\n");
    assert!(
        text.contains("routes[0].model_check.signatur")
            && text.contains("did you mean `signature`"),
        "{text}"
    );
    let text = all("dir = \".\"\n");
    assert!(text.contains("who must have signed"), "{text}");
    let text = all(
        "dir = \".\"\nkeys = [\"file:signer.pub\"]\ncertificate_chain = [\"file:signer.pub\"]\n",
    );
    assert!(text.contains("not both"), "{text}");
    let text = all("dir = \".\"\nkeys = [\"file:missing.pub\"]\n");
    assert!(
        text.contains("routes[0].model_check.keys[0]") && text.contains("does not exist"),
        "{text}"
    );
    let text = all("dir = \".\"\nkeys = []\n");
    assert!(text.contains("at least one file"), "{text}");
    let text = all("dir = \".\"\nkeys = [\"file:signer.pub\"]\non_failure = \"ignore\"\n");
    assert!(text.contains("unknown value `ignore`"), "{text}");
    assert!(
        errors("dir = \".\"\nkeys = [\"file:signer.pub\"]\nscan = false\nrequire_pq = true\n")
            .is_empty()
    );

    // A model directory that does not exist yet is a warning (it may be mounted later).
    let toml = format!(
        "{SERVER}{ECHO}{}[routes.model_check]\ndir = \"nowhere\"\nsignature = \"sigs/m.sig\"\ncertificate_chain = [\"file:signer.pub\"]\n",
        route("r", "[\"m\"]", "\"echo\"")
    );
    let loaded = aigis_gateway::config::parse(&toml, &d, false).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "routes[0].model_check.dir"),
        "{:?}",
        loaded.warnings
    );
    let spec = loaded.config.routes[0].model_check.clone().unwrap();
    assert_eq!(spec.signature, d.join("sigs/m.sig"));
    assert_eq!(
        spec.trust,
        ModelTrust::CertificateChain(vec![d.join("signer.pub")])
    );
    assert!(
        aigis_gateway::config::parse(&toml, &d, true).is_err(),
        "--strict"
    );
    std::fs::remove_dir_all(d).ok();
}
