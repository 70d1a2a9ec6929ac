//! Turns config text into a typed [`Config`], collecting every problem instead of stopping at
//! the first: each section and list entry is deserialized on its own, then checked for meaning
//! (names that must exist, units, files, secrets). Every diagnostic names the key path and, from
//! a span-keeping parse of the same text, its line.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml_edit::{Item, TableLike, Value};

use super::raw;
use super::units::{parse_duration, parse_size};
use super::{Config, Diagnostic, Level, Loaded, Route, Secret, Timeouts, Upstream, UpstreamKind};

const SECTIONS: &[&str] = &[
    "server",
    "upstreams",
    "routes",
    "identity",
    "policy",
    "cluster",
    "guard",
    "limits",
    "prices",
    "ledger",
];
/// Sections proposed in the design that later versions read; named so the error is precise.
const LATER_SECTIONS: &[&str] = &[];

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

fn key(segs: &[Seg], k: &str) -> Vec<Seg> {
    let mut v = segs.to_vec();
    v.push(Seg::Key(k.to_owned()));
    v
}

struct Validator<'a> {
    src: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
    base: &'a Path,
    strict: bool,
    diags: Vec<Diagnostic>,
}

pub(super) fn validate(src: &str, base: &Path, strict: bool) -> Result<Loaded, Vec<Diagnostic>> {
    let table: toml::Table = match toml::from_str(src) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_of(src, s.start));
            return Err(vec![Diagnostic {
                level: Level::Error,
                path: String::new(),
                line,
                message: format!("not valid TOML: {}", e.message()),
                hint: Some("check quoting and brackets on that line".into()),
            }]);
        }
    };
    let mut v = Validator {
        src,
        doc: toml_edit::Document::parse(src).ok(),
        base,
        strict,
        diags: Vec::new(),
    };
    for name in table.keys() {
        if !SECTIONS.contains(&name.as_str()) {
            v.unknown_section(name);
        }
    }
    let server = match table.get("server") {
        Some(value) => v.de::<raw::Server>(&[Seg::Key("server".into())], value.clone()),
        None => Some(raw::Server::default()),
    };
    let upstreams: Vec<Option<raw::Upstream>> = v.list(&table, "upstreams");
    let routes: Vec<Option<raw::Route>> = v.list(&table, "routes");

    let server = server.and_then(|s| v.server(s));
    let upstreams: Vec<Option<Upstream>> = upstreams
        .into_iter()
        .enumerate()
        .map(|(i, u)| u.and_then(|u| v.upstream(i, u)))
        .collect();
    let mut routes = v.routes(routes, &upstreams);
    let guard = v.guard(&table, routes.as_deref_mut());
    let cluster = v.section::<raw::Cluster>(&table, "cluster");
    let limits = v.limits(&table, cluster.as_ref(), routes.as_deref());
    let identity = v.section::<raw::Identity>(&table, "identity");
    let identity = identity.map(|i| v.identity(i, cluster.as_ref()));
    let ledger = v
        .section::<raw::Ledger>(&table, "ledger")
        .map(|l| v.ledger(l, cluster.as_ref()));
    v.route_capture(routes.as_deref(), ledger.as_ref().and_then(Option::as_ref));
    let policy = v
        .section::<raw::Policy>(&table, "policy")
        .map(|p| v.policy(&p));
    if identity.is_none() && policy.is_none() {
        v.push(
            Level::Warning,
            &[Seg::Key("identity".into())],
            "no [identity] and no [policy]: every caller is anonymous and allowed (open mode)"
                .into(),
            Some("configure [identity.api_keys] and [policy] before exposing the gateway".into()),
        );
    } else if policy.is_none() {
        v.push(
            Level::Warning,
            &[Seg::Key("policy".into())],
            "no [policy]: every request will be denied (default deny)".into(),
            Some("add [policy] policies = [\"file:policies/*.cedar\"]".into()),
        );
    }

    let errors: Vec<Diagnostic> = v
        .diags
        .iter()
        .filter(|d| d.level == Level::Error)
        .cloned()
        .collect();
    match (
        server,
        upstreams.into_iter().collect::<Option<Vec<_>>>(),
        routes,
        guard,
        limits,
    ) {
        (Some(server), Some(upstreams), Some(routes), Some(guard), Some(limits))
            if errors.is_empty() =>
        {
            Ok(Loaded {
                config: Config {
                    server,
                    upstreams,
                    routes,
                    identity: identity.flatten(),
                    policy: policy.flatten(),
                    guard,
                    limits,
                    ledger: ledger.flatten(),
                },
                warnings: v.diags,
            })
        }
        _ => Err(errors),
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset)
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

impl Validator<'_> {
    fn push(&mut self, level: Level, segs: &[Seg], message: String, hint: Option<String>) {
        let level = if self.strict { Level::Error } else { level };
        self.diags.push(Diagnostic {
            level,
            path: path_string(segs),
            line: self.locate(segs).map(|off| line_of(self.src, off)),
            message,
            hint,
        });
    }

    fn error(&mut self, segs: &[Seg], message: impl Into<String>, hint: Option<String>) {
        self.diags.push(Diagnostic {
            level: Level::Error,
            path: path_string(segs),
            line: self.locate(segs).map(|off| line_of(self.src, off)),
            message: message.into(),
            hint,
        });
    }

    /// Byte offset of the deepest part of `segs` present in the file.
    fn locate(&self, segs: &[Seg]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut table: Option<&dyn TableLike> = Some(doc.as_table());
        let mut item: Option<&Item> = None;
        let mut best = None;
        for seg in segs {
            match seg {
                Seg::Key(k) => {
                    let Some((key, found)) = table.and_then(|t| t.get_key_value(k)) else {
                        break;
                    };
                    best = key.span().map(|s| s.start).or(best);
                    item = Some(found);
                    table = found.as_table_like();
                }
                Seg::Index(i) => {
                    let found: Option<(&dyn TableLike, Option<usize>)> = match item {
                        Some(Item::ArrayOfTables(a)) => a
                            .get(*i)
                            .map(|t| (t as &dyn TableLike, t.span().map(|s| s.start))),
                        Some(Item::Value(Value::Array(a))) => match a.get(*i) {
                            Some(Value::InlineTable(t)) => {
                                Some((t as &dyn TableLike, t.span().map(|s| s.start)))
                            }
                            Some(v) => {
                                best = v.span().map(|s| s.start).or(best);
                                break;
                            }
                            None => None,
                        },
                        _ => None,
                    };
                    let Some((t, span)) = found else { break };
                    best = span.or(best);
                    table = Some(t);
                    item = None;
                }
            }
        }
        best
    }

    fn unknown_section(&mut self, name: &str) {
        let segs = [Seg::Key(name.to_owned())];
        if LATER_SECTIONS.contains(&name) {
            self.error(
                &segs,
                format!("`[{name}]` is not supported by this version of aigis"),
                Some(
                    "remove the section; docs/gateway.md lists the keys this version reads".into(),
                ),
            );
        } else {
            let hint = did_you_mean(name, SECTIONS)
                .or_else(|| Some(format!("known sections: {}", SECTIONS.join(", "))));
            self.error(&segs, format!("unknown section `{name}`"), hint);
        }
    }

    fn list<T: DeserializeOwned>(&mut self, table: &toml::Table, name: &str) -> Vec<Option<T>> {
        let segs = [Seg::Key(name.to_owned())];
        match table.get(name) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.de(&[segs[0].clone(), Seg::Index(i)], item.clone()))
                .collect(),
            Some(_) => {
                self.error(
                    &segs,
                    format!("`{name}` must be a list of tables"),
                    Some(format!("write each entry as a `[[{name}]]` table")),
                );
                Vec::new()
            }
        }
    }

    fn de<T: DeserializeOwned>(&mut self, at: &[Seg], value: toml::Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Some(t),
            Err(e) => {
                let mut segs = at.to_vec();
                for seg in e.path() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => {
                            segs.push(Seg::Index(*index));
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            segs.push(Seg::Key(key.clone()));
                        }
                        _ => {}
                    }
                }
                let message = e.inner().to_string();
                let mut hint = None;
                if let Some((field, expected)) = unknown_field(&message) {
                    hint = did_you_mean(&field, &expected)
                        .or_else(|| Some(format!("known keys here: {}", expected.join(", "))));
                    if !matches!(segs.last(), Some(Seg::Key(k)) if *k == field) {
                        segs.push(Seg::Key(field));
                    }
                } else if let Some(field) = missing_field(&message) {
                    hint = Some(format!("add `{field} = …`"));
                    hint = key_hint(&field)
                        .map(|h| format!("add `{field}`: {h}"))
                        .or(hint);
                } else if let Some(Seg::Key(k)) = segs.last() {
                    hint = key_hint(k).map(str::to_owned);
                }
                self.error(&segs, message, hint);
                None
            }
        }
    }

    fn duration(&mut self, segs: &[Seg], v: Option<&str>, default: Duration) -> Option<Duration> {
        match v.map(parse_duration) {
            None => Some(default),
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.error(segs, e, key_hint("duration").map(str::to_owned));
                None
            }
        }
    }

    fn size(&mut self, segs: &[Seg], v: Option<&str>, default: usize) -> Option<usize> {
        match v.map(parse_size) {
            None => Some(default),
            Some(Ok(n)) if n > 0 => Some(n),
            Some(Ok(_)) => {
                self.error(segs, "must be greater than zero", None);
                None
            }
            Some(Err(e)) => {
                self.error(segs, e, key_hint("size").map(str::to_owned));
                None
            }
        }
    }

    fn addr(&mut self, segs: &[Seg], v: Option<&str>, default: &str) -> Option<SocketAddr> {
        let s = v.unwrap_or(default);
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    segs,
                    format!("`{s}` is not an address"),
                    key_hint("listen").map(str::to_owned),
                );
                None
            }
        }
    }

    fn positive(&mut self, segs: &[Seg], v: Option<u32>, default: u32) -> Option<u32> {
        match v.unwrap_or(default) {
            0 => {
                self.error(segs, "must be at least 1", None);
                None
            }
            n => Some(n),
        }
    }

    /// A `file:` reference (or plain path) resolved from the config's folder; must exist.
    fn file(&mut self, segs: &[Seg], v: &str) -> Option<PathBuf> {
        let path = self.base.join(v.strip_prefix("file:").unwrap_or(v));
        if path.is_file() {
            Some(path)
        } else {
            self.error(
                segs,
                format!("file `{}` does not exist", path.display()),
                Some("relative paths resolve from the config file's folder".into()),
            );
            None
        }
    }

    fn upstream(&mut self, i: usize, u: raw::Upstream) -> Option<Upstream> {
        let at = [Seg::Key("upstreams".into()), Seg::Index(i)];
        let kind = match u.kind.as_str() {
            "openai" => UpstreamKind::OpenAi,
            "anthropic" => UpstreamKind::Anthropic,
            "echo" => UpstreamKind::Echo,
            other => {
                self.error(
                    &key(&at, "kind"),
                    format!("unknown upstream kind `{other}`"),
                    key_hint("kind").map(str::to_owned),
                );
                return None;
            }
        };
        let base_url = match (&u.base_url, kind) {
            (Some(_), UpstreamKind::Echo)
            | (None, UpstreamKind::OpenAi | UpstreamKind::Anthropic) => {
                let msg = if kind == UpstreamKind::Echo {
                    "the built-in `echo` upstream takes no `base_url`"
                } else {
                    "missing `base_url`"
                };
                self.error(
                    &key(&at, "base_url"),
                    msg,
                    key_hint("base_url").map(str::to_owned),
                );
                return None;
            }
            (None, UpstreamKind::Echo) => None,
            (Some(url), _) => Some(self.url(&key(&at, "base_url"), url)?),
        };
        let secret = match &u.api_key {
            None => Some((None, false)),
            Some(r) => self.secret(&key(&at, "api_key"), r),
        };
        let ca = match &u.ca {
            Some(c) => self.file(&key(&at, "ca"), c).map(Some),
            None => Some(None),
        };
        let t = u.timeouts.unwrap_or_default();
        let tat = key(&at, "timeouts");
        let connect = self.duration(
            &key(&tat, "connect"),
            t.connect.as_deref(),
            Duration::from_secs(5),
        );
        let first_byte = self.duration(
            &key(&tat, "first_byte"),
            t.first_byte.as_deref(),
            Duration::from_mins(1),
        );
        let idle = self.duration(
            &key(&tat, "idle"),
            t.idle.as_deref(),
            Duration::from_secs(30),
        );
        let total = self.duration(
            &key(&tat, "total"),
            t.total.as_deref(),
            Duration::from_mins(10),
        );
        let (Some((api_key, api_key_missing)), Some(ca)) = (secret, ca) else {
            return None;
        };
        let b = u.circuit_breaker.unwrap_or_default();
        let bat = key(&at, "circuit_breaker");
        Some(Upstream {
            name: u.name,
            kind,
            base_url,
            api_key,
            api_key_missing,
            ca,
            timeouts: Timeouts {
                connect: connect?,
                first_byte: first_byte?,
                idle: idle?,
                total: total?,
            },
            max_concurrent: self.positive(&key(&at, "max_concurrent"), u.max_concurrent, 512)?
                as usize,
            breaker_failures: self.positive(&key(&bat, "failures"), b.failures, 5)?,
            breaker_cooldown: self.duration(
                &key(&bat, "cooldown"),
                b.cooldown.as_deref(),
                Duration::from_secs(10),
            )?,
        })
    }

    fn url(&mut self, segs: &[Seg], url: &str) -> Option<http::Uri> {
        let parsed: Result<http::Uri, _> = url.trim_end_matches('/').parse();
        match parsed {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() =>
            {
                Some(uri)
            }
            _ => {
                self.error(
                    segs,
                    format!("`{url}` is not an http(s) base URL"),
                    key_hint("base_url").map(str::to_owned),
                );
                None
            }
        }
    }

    /// Resolves `env:NAME` / `file:PATH`. Returns (secret, configured-but-unset).
    fn secret(&mut self, segs: &[Seg], reference: &str) -> Option<(Option<Secret>, bool)> {
        if let Some(name) = reference.strip_prefix("env:") {
            return match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Some((Some(Secret(v.trim().into())), false)),
                _ => {
                    self.push(
                        Level::Warning,
                        segs,
                        format!("environment variable `{name}` is not set"),
                        Some(format!(
                            "export {name} before starting; until then this upstream answers 502"
                        )),
                    );
                    Some((None, true))
                }
            };
        }
        if let Some(file) = reference.strip_prefix("file:") {
            let path = self.base.join(file);
            return match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim().is_empty() => Some((Some(Secret(v.trim().into())), false)),
                Ok(_) => {
                    self.error(
                        segs,
                        format!("secret file `{}` is empty", path.display()),
                        None,
                    );
                    None
                }
                Err(e) => {
                    self.error(
                        segs,
                        format!("cannot read secret file `{}`: {e}", path.display()),
                        Some("relative paths resolve from the config file's folder".into()),
                    );
                    None
                }
            };
        }
        self.error(
            segs,
            "secrets are never written inline",
            key_hint("api_key").map(str::to_owned),
        );
        None
    }

    fn routes(
        &mut self,
        raw: Vec<Option<raw::Route>>,
        upstreams: &[Option<Upstream>],
    ) -> Option<Vec<Route>> {
        let mut names = HashSet::new();
        let mut exact = HashSet::new();
        let mut out = Vec::new();
        let mut ok = true;
        for (i, r) in raw.into_iter().enumerate() {
            let Some(r) = r else {
                ok = false;
                continue;
            };
            let at = [Seg::Key("routes".into()), Seg::Index(i)];
            if !names.insert(r.name.clone()) {
                self.error(
                    &key(&at, "name"),
                    format!("duplicate route name `{}`", r.name),
                    None,
                );
            }
            if r.models.is_empty() || r.models.iter().any(String::is_empty) {
                self.error(
                    &key(&at, "models"),
                    "needs at least one non-empty model name or glob",
                    key_hint("models").map(str::to_owned),
                );
            }
            for m in r.models.iter().filter(|m| !m.contains(['*', '?'])) {
                if !exact.insert(m.clone()) {
                    self.error(
                        &key(&at, "models"),
                        format!("model `{m}` is already served by an earlier route"),
                        None,
                    );
                }
            }
            let Some(indices) = self.route_upstreams(&at, r.upstream.into_vec(), upstreams) else {
                ok = false;
                continue;
            };
            if r.max_tokens == Some(0) {
                self.error(&key(&at, "max_tokens"), "must be at least 1", None);
            }
            let tokenizer = match r.tokenizer.as_deref() {
                None => super::Tokenizer::Auto,
                Some(t) => super::Tokenizer::parse(t).unwrap_or_else(|| {
                    self.error(
                        &key(&at, "tokenizer"),
                        format!("unknown tokenizer `{t}`"),
                        Some("use auto, o200k_base, cl100k_base or estimate".into()),
                    );
                    super::Tokenizer::Auto
                }),
            };
            let content = self.content_mode(&key(&at, "content"), r.content.as_deref());
            let model_check = match r.model_check {
                Some(m) => match self.model_check(&at, m) {
                    Some(spec) => Some(spec),
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None => None,
            };
            out.push(Route {
                model_check,
                name: r.name,
                models: r.models,
                upstreams: indices,
                max_tokens: r.max_tokens.map(u64::from),
                classification: r.classification,
                tags: r.tags.unwrap_or_default(),
                guard: r.guard,
                tokenizer,
                content,
            });
        }
        if out.is_empty() && ok {
            self.push(
                Level::Warning,
                &[Seg::Key("routes".into())],
                "no routes: every model request will get 404".into(),
                Some("add a [[routes]] table".into()),
            );
        }
        ok.then_some(out)
    }

    /// Resolves a route's upstream names to indices; all must exist and share one kind.
    fn route_upstreams(
        &mut self,
        at: &[Seg],
        names: Vec<String>,
        upstreams: &[Option<Upstream>],
    ) -> Option<Vec<usize>> {
        let at = key(at, "upstream");
        let known: Vec<&str> = upstreams
            .iter()
            .flatten()
            .map(|u| u.name.as_str())
            .collect();
        let mut indices = Vec::new();
        for name in names {
            match upstreams
                .iter()
                .position(|u| u.as_ref().is_some_and(|u| u.name == name))
            {
                Some(idx) => indices.push(idx),
                None => {
                    let hint = did_you_mean(&name, &known).or_else(|| {
                        Some(format!(
                            "define it in an [[upstreams]] table (known: {})",
                            known.join(", ")
                        ))
                    });
                    self.error(&at, format!("no upstream named `{name}`"), hint);
                    return None;
                }
            }
        }
        if indices.is_empty() {
            self.error(
                &at,
                "needs at least one upstream",
                key_hint("upstream").map(str::to_owned),
            );
            return None;
        }
        let mut kinds: Vec<&str> = indices
            .iter()
            .filter_map(|&i| upstreams[i].as_ref())
            .map(|u| u.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.len() > 1 {
            self.error(
                &at,
                format!(
                    "mixes upstream kinds ({}); this version does not translate between them",
                    kinds.join(", ")
                ),
                Some("give each kind its own route".into()),
            );
            return None;
        }
        Some(indices)
    }
}

/// Parses serde's "unknown field `lisen`, expected one of `listen`, …" message.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((field.to_owned(), expected))
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(f, _)| f.to_owned())
}

fn did_you_mean<S: AsRef<str>>(input: &str, candidates: &[S]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c.as_ref()), c.as_ref()))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

fn key_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "listen" | "admin_listen" => "an address in quotes, e.g. \"127.0.0.1:8080\"",
        "duration" | "shutdown_grace" | "connect" | "first_byte" | "idle" | "total"
        | "cooldown" => "a duration in quotes, e.g. \"30s\", \"250ms\" or \"10m\"",
        "size" | "max_body" | "max_header" | "max_string" | "max_response" => {
            "a size in quotes, e.g. \"4MiB\" or \"32KiB\""
        }
        "api_key" => "a reference: \"env:NAME\" or \"file:PATH\"; secrets are never written inline",
        "kind" => "one of \"openai\" (any OpenAI-compatible server), \"anthropic\", \"echo\"",
        "base_url" => "e.g. \"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\"",
        "models" => "a list of model names or globs, e.g. [\"gpt-4o*\", \"llama3\"]",
        "upstream" => "an upstream name, or a list of names tried in order before the first byte",
        "name" => "a unique name in quotes",
        _ => return None,
    })
}

#[path = "validate_guard.rs"]
mod guard;
#[path = "validate_identity.rs"]
mod identity;
pub(crate) use identity::secure_url;
#[path = "validate_ledger.rs"]
mod ledger;
#[path = "validate_limits.rs"]
mod limits;
#[path = "validate_model_check.rs"]
mod model_check;
#[path = "validate_server.rs"]
mod server;

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
