use super::*;
use crate::config::{LedgerConfig, LedgerOnError, LedgerStore};

fn errors(src: &str) -> Vec<Diagnostic> {
    match validate(src, Path::new("."), false) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e,
    }
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[upstreams]]
name = "echo"
kind = "echo"

[[routes]]
name = "try-me"
models = ["echo", "echo-*"]
upstream = "echo"
max_tokens = 100
"#;

#[test]
fn good_config_loads_with_defaults() {
    let loaded = validate(GOOD, Path::new("."), false).unwrap();
    let c = loaded.config;
    assert_eq!(c.server.limits.max_body, 4 << 20);
    assert_eq!(c.upstreams[0].kind, UpstreamKind::Echo);
    assert_eq!(c.route_for("echo-2").unwrap().name, "try-me");
    assert!(c.route_for("gpt-4o").is_none());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].message.contains("open mode"));
    assert!(
        validate(GOOD, Path::new("."), true).is_err(),
        "--strict refuses open mode"
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    let src = "[server]\n\nlisten = 12\n";
    let e = errors(src);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path, "server.listen");
    assert_eq!(e[0].line, Some(3));
    assert!(e[0].hint.as_deref().unwrap().contains("127.0.0.1:8080"));
}

#[test]
fn every_error_is_reported() {
    let src = r#"
[server]
lisen = "127.0.0.1:1"

[[upstreams]]
name = "a"
kind = "opnai"

[[upstreams]]
name = "b"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "sk-inline-secret"
timeouts = { idle = "30 seconds" }

[[routes]]
name = "r"
models = ["gpt-4o*"]
upstream = "c"
"#;
    let e = errors(src);
    let paths: Vec<_> = e.iter().map(|d| (d.path.as_str(), d.line)).collect();
    assert!(paths.contains(&("server.lisen", Some(3))), "{paths:?}");
    assert!(paths.contains(&("upstreams[0].kind", Some(7))), "{paths:?}");
    assert!(
        paths.contains(&("upstreams[1].api_key", Some(13))),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("upstreams[1].timeouts.idle", Some(14))),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("routes[0].upstream", Some(19))),
        "{paths:?}"
    );
    let lisen = e.iter().find(|d| d.path == "server.lisen").unwrap();
    assert_eq!(lisen.hint.as_deref(), Some("did you mean `listen`?"));
    // The inline secret is never echoed back.
    assert!(!e.iter().any(|d| d.to_string().contains("sk-inline-secret")));
}

/// A folder holding a placeholder `ledger.key`, for configs with a `[ledger]` section.
fn ledger_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aigis-ledger-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ledger.key"), "placeholder").unwrap();
    dir
}

/// The `[ledger]` of the good config plus a file-set ledger and `extra` lines, loaded in `dir`.
fn ledger_with(dir: &Path, extra: &str) -> Result<LedgerConfig, Vec<Diagnostic>> {
    let src = format!(
        "{GOOD}\n[ledger]\nstore = \"file:ledger\"\nsigning_key = \"file:ledger.key\"\n{extra}"
    );
    validate(&src, dir, false).map(|l| l.config.ledger.unwrap())
}

#[test]
fn ledger_commit_interval_has_a_default_and_a_bound() {
    let dir = ledger_dir("ci");
    let interval = |extra: &str| ledger_with(&dir, extra).unwrap().commit_interval;
    assert_eq!(interval(""), Duration::from_millis(10));
    assert_eq!(
        interval("commit_interval = \"20ms\"\n"),
        Duration::from_millis(20)
    );
    let Err(e) = ledger_with(&dir, "commit_interval = \"2s\"\n") else {
        panic!("a commit interval over 1s is refused")
    };
    assert_eq!(e[0].path, "ledger.commit_interval");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ledger_store_timeout_has_a_default_and_bounds() {
    let dir = ledger_dir("st");
    let timeout = |extra: &str| ledger_with(&dir, extra).unwrap().store_timeout;
    assert_eq!(timeout(""), Duration::from_secs(10));
    assert_eq!(timeout("store_timeout = \"1m\"\n"), Duration::from_mins(1));
    for bad in ["\"100ms\"", "\"1h\"", "\"soon\""] {
        let Err(e) = ledger_with(&dir, &format!("store_timeout = {bad}\n")) else {
            panic!("store_timeout = {bad} is refused")
        };
        assert_eq!(e[0].path, "ledger.store_timeout", "{bad}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ledger_client_ip_is_full_network_or_off() {
    use crate::config::ClientIp;
    let dir = ledger_dir("ip");
    let mode = |m: &str| ledger_with(&dir, m).map(|l| l.client_ip);
    assert_eq!(mode("").unwrap(), ClientIp::Full);
    assert_eq!(
        mode("client_ip = \"network\"\n").unwrap(),
        ClientIp::Network
    );
    assert_eq!(mode("client_ip = \"off\"\n").unwrap(), ClientIp::Off);
    let Err(e) = mode("client_ip = \"hashed\"\n") else {
        panic!("an unknown mode was accepted");
    };
    assert_eq!(e[0].path, "ledger.client_ip");
    assert!(e[0].message.contains("unknown value `hashed`"), "{e:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ledger_section_is_validated() {
    let dir = std::env::temp_dir().join(format!("aigis-ledger-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ledger.key"), "placeholder").unwrap();
    let with = |ledger: &str| format!("{GOOD}\n[ledger]\n{ledger}");
    let ok = validate(
        &with("store = \"sqlite:ledger.db\"\nsigning_key = \"file:ledger.key\"\ncheckpoint_every = \"2s\"\non_store_error = \"fail-closed\"\nspool_max = \"1MiB\"\n"),
        &dir,
        false,
    )
    .unwrap()
    .config
    .ledger
    .unwrap();
    assert_eq!(ok.store, LedgerStore::Sqlite(dir.join("ledger.db")));
    assert_eq!(ok.checkpoint_every, Duration::from_secs(2));
    assert_eq!(ok.on_store_error, LedgerOnError::FailClosed);
    assert_eq!(ok.spool_max, 1 << 20);
    assert_eq!(ok.spool, dir.join("ledger.db.spool"));
    let file = validate(
        &with("store = \"file:ledger\"\nsigning_key = \"file:ledger.key\"\n"),
        &dir,
        false,
    )
    .unwrap()
    .config
    .ledger
    .unwrap();
    assert_eq!(file.store, LedgerStore::File(dir.join("ledger")));
    assert_eq!(file.spool, dir.join("ledger.spool"));
    let errs = |ledger: &str| match validate(&with(ledger), &dir, false) {
        Ok(_) => panic!("expected errors for {ledger}"),
        Err(e) => e,
    };
    let key = "signing_key = \"file:ledger.key\"\n";
    let e = errs(&format!("store = \"file:\"\n{key}"));
    assert_eq!(e[0].path, "ledger.store");
    assert!(
        e[0].message.contains("`file:` needs a path"),
        "{}",
        e[0].message
    );
    // Encrypted content needs recipients: never a plaintext fallback.
    let e = errs(&format!(
        "store = \"sqlite:l.db\"\n{key}content = \"encrypted\"\n"
    ));
    assert_eq!(e[0].path, "ledger.content");
    assert!(
        e[0].message.contains("[ledger.capture]"),
        "{}",
        e[0].message
    );
    let e = errs(&format!(
        "store = \"sqlite:l.db\"\n{key}content = \"plain\"\n"
    ));
    assert_eq!(e[0].path, "ledger.content");
    let e = errs(&format!("store = \"sqlite:l.db\"\n{key}stroe = \"x\"\n"));
    assert!(
        e[0].message.contains("stroe"),
        "unknown keys are errors: {e:?}"
    );
    let e = errs(&format!("store = \"redis://x\"\n{key}"));
    assert_eq!(e[0].path, "ledger.store");
    let e = errs(&format!(
        "store = \"sqlite:l.db\"\n{key}on_store_error = \"drop\"\n"
    ));
    assert_eq!(e[0].path, "ledger.on_store_error");
    let missing = validate(
        &with("store = \"sqlite:l.db\"\nsigning_key = \"file:missing.key\"\n"),
        &dir,
        false,
    )
    .unwrap();
    assert!(
        missing
            .warnings
            .iter()
            .any(|w| w.path == "ledger.signing_key" && w.message.contains("creates it"))
    );
    let e = errs("store = \"sqlite:l.db\"\nsigning_key = \"env:KEY\"\n");
    assert_eq!(e[0].path, "ledger.signing_key");
    let e = errs(&format!(
        "store = \"sqlite:l.db\"\n{key}checkpoint_every = \"soon\"\n"
    ));
    assert_eq!(e[0].path, "ledger.checkpoint_every");
    let e = errs(&format!(
        "store = \"sqlite:l.db\"\n{key}spool_max = \"lots\"\n"
    ));
    assert_eq!(e[0].path, "ledger.spool_max");
    // A fleet cannot share a SQLite ledger.
    let fleet = format!(
        "{GOOD}\n[cluster]\nredis = \"redis://127.0.0.1:6379\"\n[ledger]\nstore = \"sqlite:l.db\"\n{key}"
    );
    let e = validate(&fleet, &dir, false).err().unwrap();
    assert!(
        e.iter()
            .any(|d| d.path == "ledger.store" && d.message.contains("fleet")),
        "{e:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn syntax_error_has_line() {
    let e = errors("[server]\nlisten = \"127.0.0.1:1\n");
    assert_eq!(e[0].line, Some(2));
}

#[test]
fn unset_env_secret_is_warning_unless_strict() {
    let src = r#"
[[upstreams]]
name = "o"
kind = "openai"
base_url = "https://api.openai.com/v1"
api_key = "env:AIGIS_TEST_SURELY_UNSET_VAR"
"#;
    let loaded = validate(src, Path::new("."), false).unwrap();
    assert!(loaded.config.upstreams[0].api_key_missing);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "upstreams[0].api_key" && w.line == Some(6))
    );
    let strict = validate(src, Path::new("."), true).unwrap_err();
    assert!(strict.iter().any(|d| d.path == "upstreams[0].api_key"));
}

#[test]
fn oidc_providers_are_named_and_issued_once() {
    let provider = |name: &str, issuer: &str| {
        format!(
            "[[identity.oidc]]\nname = \"{name}\"\nissuer = \"{issuer}\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n"
        )
    };
    let src = format!(
        "{GOOD}{}{}{}",
        provider("corp", "https://idp.example"),
        provider("corp", "https://other.example"),
        provider("again", "https://idp.example"),
    );
    let e = errors(&src);
    let at = |path: &str, text: &str| e.iter().any(|d| d.path == path && d.message.contains(text));
    assert!(at("identity.oidc[1].name", "already named `corp`"), "{e:?}");
    assert!(at("identity.oidc[2].issuer", "configured twice"), "{e:?}");
}

#[test]
fn oidc_allowed_roles_are_names_and_their_absence_is_warned_of_among_several_providers() {
    let provider = |name: &str, extra: &str| {
        format!(
            "[[identity.oidc]]\nname = \"{name}\"\nissuer = \"https://{name}.example\"\naudiences = [\"aigis\"]\njwks = \"discovery\"\nalgorithms = [\"ES256\"]\n{extra}\n"
        )
    };
    let warned = |src: &str| -> Vec<String> {
        let loaded = validate(src, Path::new("."), false).unwrap();
        let oidc = loaded.config.identity.unwrap().oidc;
        assert!(!oidc.is_empty());
        loaded
            .warnings
            .iter()
            .filter(|w| w.message.contains("may grant any role"))
            .map(|w| w.path.clone())
            .collect()
    };
    assert!(
        warned(&format!("{GOOD}{}", provider("corp", ""))).is_empty(),
        "one provider: no warning"
    );
    let two = format!(
        "{GOOD}{}{}",
        provider("corp", ""),
        provider("partner", "allowed_roles = [\"reader\"]")
    );
    assert_eq!(warned(&two), ["identity.oidc[0]"]);
    let loaded = validate(&two, Path::new("."), false).unwrap();
    let oidc = loaded.config.identity.unwrap().oidc;
    assert_eq!(
        oidc[1].allowed_roles.as_deref(),
        Some(&["reader".to_owned()][..])
    );
    assert_eq!(oidc[0].allowed_roles, None);
    let e = errors(&format!(
        "{GOOD}{}",
        provider("corp", "allowed_roles = [\"read er\"]")
    ));
    assert_eq!(e[0].path, "identity.oidc[0].allowed_roles", "{e:?}");
}

#[test]
fn mixed_kinds_and_duplicates_are_errors() {
    let src = r#"
[[upstreams]]
name = "o"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"

[[upstreams]]
name = "a"
kind = "anthropic"
base_url = "http://127.0.0.1:2"

[[routes]]
name = "r"
models = ["m"]
upstream = ["o", "a"]

[[routes]]
name = "r"
models = ["m"]
upstream = "o"
"#;
    let e = errors(src);
    assert!(e.iter().any(|d| d.message.contains("mixes upstream kinds")));
    assert!(e.iter().any(|d| d.message.contains("duplicate route name")));
    assert!(e.iter().any(|d| d.message.contains("already served")));
}

#[test]
fn file_paths_resolve_from_config_folder() {
    let dir = std::env::temp_dir().join(format!("aigis-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.txt"), "sk-from-file\n").unwrap();
    let src = r#"
[[upstreams]]
name = "o"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
api_key = "file:key.txt"
"#;
    let loaded = validate(src, &dir, false).unwrap();
    assert_eq!(
        loaded.config.upstreams[0]
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "sk-from-file"
    );
    assert!(!format!("{:?}", loaded.config).contains("sk-from-file"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn limits_are_validated_with_their_key_and_line() {
    let src = format!(
        "{GOOD}\n[[limits]]\nname = \"a\"\nscope = \"principal\"\nrequests = \"10/fortnight\"\n\
         \n[[limits]]\nname = \"b\"\nscope = \"tenant\"\nrequests = \"1/s\"\n\
         \n[[limits]]\nname = \"c\"\nscope = \"team\"\nrequests = \"1/s\"\ntokens = \"5/s\"\n\
         \n[[limits]]\nname = \"d\"\nscope = \"team\"\nbudget = \"5USD/month\"\nroutes = [\"nope\"]\n\
         \n[[limits]]\nname = \"e\"\nscope = \"ip\"\nconcurrent = 2\non_store_error = \"maybe\"\n\
         \n[cluster]\nredis = \"http://x\"\n"
    );
    let errs = errors(&src);
    let find = |path: &str| {
        errs.iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("no error at {path}: {errs:#?}"))
    };
    assert!(find("limits[0].requests").message.contains("fortnight"));
    assert!(find("limits[0].requests").line.is_some());
    assert!(find("limits[1].scope").message.contains("tenant"));
    assert!(find("limits[2]").message.contains("requests, tokens"));
    assert!(find("limits[3].routes").message.contains("nope"));
    assert!(find("prices").message.contains("USD"));
    assert!(find("limits[4].on_store_error").message.contains("maybe"));
    assert!(find("cluster.redis").message.contains("redis://"));
}

#[test]
fn limits_load_into_typed_config() {
    let src = format!(
        "{GOOD}\n[[limits]]\nname = \"t\"\nscope = [\"team\", \"model\"]\ntokens = \"2M/day\"\n\
         models = [\"echo*\"]\non_store_error = \"fail-open\"\n\
         \n[[limits]]\nname = \"g\"\nscope = \"global\"\nbudget = \"1M tokens/month\"\n\
         \n[cluster]\nredis = \"redis://127.0.0.1:6379\"\nkey_prefix = \"x\"\n"
    );
    let c = validate(&src, Path::new("."), false).unwrap().config;
    let l = &c.limits.limits;
    assert_eq!(
        l[0].scope,
        [super::super::Scope::Team, super::super::Scope::Model]
    );
    assert_eq!(l[0].on_store_error, super::super::OnStoreError::FailOpen);
    assert!(l[1].scope.is_empty(), "global is one counter");
    assert_eq!(c.limits.redis.as_ref().unwrap().key_prefix, "x");
}

#[test]
fn ledger_capture_is_validated_with_key_paths() {
    use aigis_crypto::age::{Identity, PqIdentity, X25519Identity};
    let dir = std::env::temp_dir().join(format!("aigis-capture-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ledger.key"), "placeholder").unwrap();
    let x = Identity::X25519(X25519Identity::generate().unwrap())
        .to_recipient()
        .unwrap()
        .unwrap()
        .to_string();
    let pq = Identity::Pq(PqIdentity::generate().unwrap())
        .to_recipient()
        .unwrap()
        .unwrap()
        .to_string();
    std::fs::write(dir.join("b.recipients"), format!("# team b\n{pq}\n")).unwrap();
    let cfg = |route: &str, capture: &str| {
        format!(
            "{GOOD}{route}\n[ledger]\nstore = \"sqlite:ledger.db\"\nsigning_key = \"file:ledger.key\"\n{capture}"
        )
    };
    let capture = format!(
        "[ledger.capture]\nrecipients = {{ default = [\"{x}\"], team-b = [\"file:b.recipients\"] }}\n"
    );
    let loaded = validate(&cfg("content = \"encrypted\"", &capture), &dir, false).unwrap();
    let ledger = loaded.config.ledger.unwrap();
    assert_eq!(loaded.config.routes[0].content, Some(true));
    assert!(ledger.captures(Some(true)) && !ledger.captures(None));
    let store = ledger.capture.unwrap();
    assert_eq!(store.dir(), dir.join("ledger.db.content"));
    assert!(store.recipients_for("team-b").unwrap()[0].is_post_quantum());
    assert!(!store.recipients_for("anyone").unwrap()[0].is_post_quantum());

    let errs = |route: &str, capture: &str| match validate(&cfg(route, capture), &dir, false) {
        Ok(_) => panic!("expected errors for {route} / {capture}"),
        Err(e) => e,
    };
    // A route that captures without [ledger.capture].
    let e = errs("content = \"encrypted\"", "");
    assert_eq!(e[0].path, "routes[0].content");
    assert!(
        e[0].message.contains("never stored unencrypted"),
        "{}",
        e[0].message
    );
    // A bad recipient is named by its key path, a missing file too.
    let e = errs(
        "",
        "[ledger.capture]\nrecipients = { team-a = [\"age1notakey\"] }\n",
    );
    assert_eq!(e[0].path, "ledger.capture.recipients.team-a[0]");
    let e = errs(
        "",
        "[ledger.capture]\nrecipients = { team-a = [\"file:nope.txt\"] }\n",
    );
    assert_eq!(e[0].path, "ledger.capture.recipients.team-a[0]");
    assert!(e[0].message.contains("nope.txt"), "{}", e[0].message);
    // Mixing post-quantum and classical recipients for one tenant.
    let e = errs(
        "",
        &format!("[ledger.capture]\nrecipients = {{ team-a = [\"{x}\", \"{pq}\"] }}\n"),
    );
    assert_eq!(e[0].path, "ledger.capture.recipients.team-a");
    let e = errs("", "[ledger.capture]\nrecipients = { team-a = [] }\n");
    assert_eq!(e[0].path, "ledger.capture.recipients.team-a");
    let e = errs("", "[ledger.capture]\nrecipients = {}\n");
    assert_eq!(e[0].path, "ledger.capture.recipients");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn trusted_proxies_are_ranges_and_vast_ones_are_warned_about() {
    let with = |list: &str| {
        GOOD.replace(
            "[[upstreams]]",
            &format!("trusted_proxies = {list}\n\n[[upstreams]]"),
        )
    };
    let loaded = validate(
        &with(r#"["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]"#),
        Path::new("."),
        false,
    )
    .unwrap();
    assert_eq!(loaded.config.server.trusted_proxies.len(), 3);
    assert!(loaded.config.server.trusted_proxies[1].contains("192.0.2.7".parse().unwrap()));
    let e = errors(&with(r#"["10.0.0.1/8", "proxy.internal"]"#));
    let paths: Vec<&str> = e.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["server.trusted_proxies[0]", "server.trusted_proxies[1]"],
        "{e:?}"
    );
    assert!(e[0].message.contains("did you mean 10.0.0.0/8"), "{e:?}");
    let loaded = validate(&with(r#"["0.0.0.0/0"]"#), Path::new("."), false).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "server.trusted_proxies[0]" && w.message.contains("vast")),
        "{:?}",
        loaded.warnings
    );
    let e = errors(&GOOD.replace("[[upstreams]]", "proxy_protocol = true\n\n[[upstreams]]"));
    assert_eq!(e[0].path, "server.proxy_protocol", "{e:?}");
    let loaded = validate(
        &with(
            r#"["10.0.0.0/24"]
proxy_protocol = true"#,
        ),
        Path::new("."),
        false,
    )
    .unwrap();
    assert!(loaded.config.server.proxy_protocol);
}
