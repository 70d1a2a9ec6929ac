//! ML-BOM: a CycloneDX 1.6 JSON document for a model directory.
//!
//! - one `machine-learning-model` component: name, SHA-256 subject digest (the same digest an
//!   OMS signature carries), license (model card front matter, GGUF or safetensors metadata),
//!   `modelCard.modelParameters` (architecture family and architecture from `config.json` or
//!   GGUF, task from the model card, datasets), and properties: parameter count and dtypes from
//!   safetensors/GGUF headers, the `aigis scan` verdict;
//! - one `file` component per file with its SHA-256, nested in the model component;
//! - `data` components for datasets (given on the command line, with a digest when a path is
//!   given, or named in the model card);
//! - `library` components and `dependencies` when a pinned lockfile sits in the model directory
//!   (`requirements*.txt` with `==` pins, `uv.lock`, `poetry.lock`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::SigningError;
use super::hashing::{self, HashOptions};
use super::statement::{GIT_PATHS, HashType, Method, Serialization};
use super::weights;

/// Largest metadata file read (config.json, README.md, lockfiles).
pub const MAX_METADATA_FILE: u64 = 4 * 1024 * 1024;
/// Most dependencies listed.
pub const MAX_DEPENDENCIES: usize = 100_000;

/// A dataset to record as a `data` component.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Name.
    pub name: String,
    /// Local copy to hash (a file or directory), if any.
    pub path: Option<PathBuf>,
}

/// ML-BOM options.
#[derive(Debug, Clone, Default)]
pub struct SbomOptions {
    /// Datasets used to train or evaluate the model.
    pub datasets: Vec<Dataset>,
    /// Run `aigis scan` over the model and record its verdict.
    pub scan: bool,
    /// Worker threads for hashing.
    pub threads: Option<usize>,
    /// Fixed serial number and timestamp (reproducible output for tests).
    pub fixed: Option<(String, String)>,
}

/// What the model card files say.
#[derive(Debug, Default)]
struct Card {
    license: Option<String>,
    family: Option<String>,
    architecture: Option<String>,
    task: Option<String>,
    datasets: Vec<String>,
    base_model: Option<String>,
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_METADATA_FILE {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// Reads `config.json` (Hugging Face) and the YAML front matter of `README.md` (model card).
fn read_card(model: &Path) -> Card {
    let mut card = Card::default();
    if let Some(cfg) =
        read_small(&model.join("config.json")).and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        card.family = cfg
            .get("model_type")
            .and_then(Value::as_str)
            .map(str::to_string);
        card.architecture = cfg
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let Some(readme) = read_small(&model.join("README.md")) else {
        return card;
    };
    let mut lines = readme.lines();
    if lines.next().map(str::trim) != Some("---") {
        return card;
    }
    let mut list_key: Option<String> = None;
    for line in lines.take(2000) {
        if line.trim() == "---" {
            break;
        }
        if let Some(item) = line.trim_start().strip_prefix("- ") {
            if list_key.as_deref() == Some("datasets") {
                card.datasets.push(unquote(item));
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim().to_string(), unquote(value));
        if value.is_empty() {
            list_key = Some(key);
            continue;
        }
        list_key = None;
        match key.as_str() {
            "license" => card.license = Some(value),
            "pipeline_tag" => card.task = Some(value),
            "base_model" => card.base_model = Some(value),
            "datasets" => card.datasets.push(value),
            _ => {}
        }
    }
    card
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// Common model-card license identifiers that are SPDX ids (with their SPDX spelling); others
/// are recorded by name.
fn spdx_id(license: &str) -> Option<&'static str> {
    const IDS: &[&str] = &[
        "Apache-2.0",
        "MIT",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "GPL-2.0-only",
        "GPL-3.0-only",
        "LGPL-3.0-only",
        "AGPL-3.0-only",
        "MPL-2.0",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "CC-BY-NC-SA-4.0",
        "OpenRAIL",
        "Unlicense",
        "BSL-1.0",
        "Artistic-2.0",
    ];
    let l = license.to_ascii_lowercase();
    let l = match l.as_str() {
        "gpl-3.0" => "gpl-3.0-only",
        "gpl-2.0" => "gpl-2.0-only",
        "lgpl-3.0" => "lgpl-3.0-only",
        "agpl-3.0" => "agpl-3.0-only",
        other => other,
    };
    IDS.iter().copied().find(|id| id.eq_ignore_ascii_case(l))
}

fn license_json(license: &str) -> Value {
    match spdx_id(license) {
        Some(id) => json!([{"license": {"id": id}}]),
        None => json!([{"license": {"name": license}}]),
    }
}

/// File components, and the model properties the weights headers give (parameters, dtypes).
fn inspect_files(
    model: &Path,
    manifest: &super::ModelManifest,
    root: &str,
    card: &mut Card,
) -> (Vec<Value>, Vec<Value>) {
    let mut files = Vec::new();
    let mut params = 0u64;
    let mut dtypes: BTreeMap<String, u64> = BTreeMap::new();
    let mut formats = BTreeSet::new();
    let mut header_errors = Vec::new();
    for r in &manifest.resources {
        let path = if r.name == "." {
            model.to_path_buf()
        } else {
            model.join(&r.name)
        };
        match weights::inspect(&path) {
            Ok(Some(w)) => {
                params = params.saturating_add(w.parameters);
                for (d, n) in w.dtypes {
                    *dtypes.entry(d).or_default() += n;
                }
                formats.insert(w.format);
                let meta = |k: &str| w.metadata.get(k).cloned();
                card.family = card.family.take().or_else(|| meta("general.architecture"));
                card.license = card
                    .license
                    .take()
                    .or_else(|| meta("general.license").or_else(|| meta("license")));
            }
            Ok(None) => {}
            Err(e) => header_errors.push(format!("{}: {e}", r.name)),
        }
        files.push(json!({
            "type": "file",
            "bom-ref": format!("file:{}", r.name),
            "name": r.name,
            "hashes": [{"alg": "SHA-256", "content": r.digest}],
        }));
    }

    let mut properties = vec![
        json!({"name": "aigis:model:subject_digest", "value": format!("sha256:{root}")}),
        json!({"name": "aigis:model:files", "value": manifest.resources.len().to_string()}),
    ];
    if !formats.is_empty() {
        properties.push(json!({"name": "aigis:model:parameters", "value": params.to_string()}));
        properties.push(json!({"name": "aigis:model:dtypes", "value": dtypes.keys().cloned().collect::<Vec<_>>().join(",")}));
        properties.push(json!({"name": "aigis:model:weight_formats", "value": formats.iter().copied().collect::<Vec<_>>().join(",")}));
    }
    for e in &header_errors {
        properties.push(json!({"name": "aigis:model:unreadable_header", "value": e}));
    }
    (files, properties)
}

/// `modelCard.modelParameters` from the model card and the dataset components.
fn model_parameters(card: &Card, data_components: &[Value]) -> serde_json::Map<String, Value> {
    let mut model_params = serde_json::Map::new();
    if let Some(f) = &card.family {
        model_params.insert("architectureFamily".into(), json!(f));
    }
    if let Some(a) = &card.architecture {
        model_params.insert("modelArchitecture".into(), json!(a));
    }
    if let Some(t) = &card.task {
        model_params.insert("task".into(), json!(t));
    }
    if !data_components.is_empty() {
        model_params.insert(
            "datasets".into(),
            json!(
                data_components
                    .iter()
                    .map(|c| json!({"ref": c["bom-ref"]}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    model_params
}

/// Builds the ML-BOM of `model`; `progress` is told the bytes hashed (model and datasets) as
/// they are.
pub fn model_bom(
    model: &Path,
    opts: &SbomOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Value, SigningError> {
    let ser = Serialization {
        method: Method::Files,
        hash_type: HashType::Sha256,
        allow_symlinks: false,
        ignore_paths: GIT_PATHS.iter().map(|s| (*s).to_string()).collect(),
    };
    let hopts = HashOptions {
        threads: opts.threads,
        only: None,
    };
    let manifest = hashing::hash_model(model, &ser, &hopts, progress)?;
    let root = manifest.root_digest()?;
    let name = manifest.model_name.clone();
    let model_ref = format!("model:{name}");
    let is_dir = model.is_dir();
    let mut card = if is_dir {
        read_card(model)
    } else {
        Card::default()
    };

    let (files, mut properties) = inspect_files(model, &manifest, &root, &mut card);
    if opts.scan {
        properties.extend(scan_properties(model));
    }
    if let Some(base) = &card.base_model {
        properties.push(json!({"name": "aigis:model:base_model", "value": base}));
    }

    let mut data_components = Vec::new();
    for d in &opts.datasets {
        data_components.push(dataset_component(
            &d.name,
            d.path.as_deref(),
            opts.threads,
            progress,
        )?);
    }
    for d in &card.datasets {
        if !opts.datasets.iter().any(|g| &g.name == d) {
            data_components.push(dataset_component(d, None, None, progress)?);
        }
    }
    let model_params = model_parameters(&card, &data_components);
    let mut model_component = json!({
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": name,
        "hashes": [{"alg": "SHA-256", "content": root}],
        "modelCard": {"modelParameters": model_params},
        "properties": properties,
        "components": files,
    });
    if let Some(l) = &card.license {
        model_component["licenses"] = license_json(l);
    }

    let libraries = if is_dir {
        lockfile_libraries(model)
    } else {
        Vec::new()
    };
    let mut dependencies = vec![json!({
        "ref": model_ref,
        "dependsOn": data_components.iter().chain(libraries.iter()).map(|c| c["bom-ref"].clone()).collect::<Vec<_>>(),
    })];
    for c in data_components.iter().chain(libraries.iter()) {
        dependencies.push(json!({"ref": c["bom-ref"], "dependsOn": []}));
    }
    let (serial, timestamp) = opts
        .fixed
        .clone()
        .unwrap_or_else(|| (random_urn(), aigis_report::time::now_rfc3339()));
    let mut components = vec![model_component];
    components.extend(data_components);
    components.extend(libraries);
    Ok(json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "aigis", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {"type": "machine-learning-model", "bom-ref": format!("{model_ref}#metadata"), "name": manifest.model_name},
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

fn scan_properties(model: &Path) -> Vec<Value> {
    let (files, skipped) = aigis_artifact::scan::collect_files(&[model.to_path_buf()]);
    let outcomes = aigis_artifact::scan::scan_files(&files, 0, &|| {});
    let mut by_sev: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_scanned = skipped.len();
    let mut max = None;
    for o in &outcomes {
        not_scanned += o.not_scanned.len();
        for f in &o.findings {
            *by_sev.entry(f.severity().to_string()).or_default() += 1;
        }
        max = max.max(aigis_artifact::scan::max_severity(o));
    }
    let verdict = match (max, not_scanned) {
        (Some(s), _) => format!("findings (max {s})"),
        (None, 0) => "clean".to_string(),
        (None, _) => "incomplete".to_string(),
    };
    let mut props = vec![
        json!({"name": "aigis:scan:verdict", "value": verdict}),
        json!({"name": "aigis:scan:files", "value": files.len().to_string()}),
        json!({"name": "aigis:scan:not_scanned", "value": not_scanned.to_string()}),
    ];
    for (sev, n) in by_sev {
        props.push(json!({"name": format!("aigis:scan:findings:{sev}"), "value": n.to_string()}));
    }
    props
}

fn dataset_component(
    name: &str,
    path: Option<&Path>,
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Value, SigningError> {
    let mut c = json!({
        "type": "data",
        "bom-ref": format!("data:{name}"),
        "name": name,
        "data": [{"type": "dataset", "name": name}],
    });
    if let Some(p) = path {
        let ser = Serialization {
            method: Method::Files,
            hash_type: HashType::Sha256,
            allow_symlinks: false,
            ignore_paths: GIT_PATHS.iter().map(|s| (*s).to_string()).collect(),
        };
        let m = hashing::hash_model(
            p,
            &ser,
            &HashOptions {
                threads,
                only: None,
            },
            progress,
        )?;
        c["hashes"] = json!([{"alg": "SHA-256", "content": m.root_digest()?}]);
        c["properties"] =
            json!([{"name": "aigis:data:files", "value": m.resources.len().to_string()}]);
    }
    Ok(c)
}

/// Pinned packages from lockfiles in the model directory, as `library` components.
fn lockfile_libraries(model: &Path) -> Vec<Value> {
    let mut pins: BTreeSet<(String, String)> = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(model) else {
        return Vec::new();
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(text) = read_small(&e.path()) else {
            continue;
        };
        if name.starts_with("requirements")
            && Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
        {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if let Some((n, v)) = line.split_once("==") {
                    let v = v.split([';', ' ']).next().unwrap_or_default();
                    pins.insert((normalize(n), v.trim().to_string()));
                }
            }
        } else if name == "uv.lock" || name == "poetry.lock" {
            let mut current: Option<String> = None;
            for line in text.lines() {
                if line.starts_with("[[package]]") {
                    current = None;
                } else if let Some(v) = line.strip_prefix("name = ") {
                    current = Some(normalize(&unquote(v)));
                } else if let (Some(n), Some(v)) = (&current, line.strip_prefix("version = ")) {
                    pins.insert((n.clone(), unquote(v)));
                    current = None;
                }
            }
        }
        if pins.len() > MAX_DEPENDENCIES {
            break;
        }
    }
    pins.into_iter()
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .map(|(n, v)| {
            let purl = format!("pkg:pypi/{n}@{v}");
            json!({"type": "library", "bom-ref": purl, "name": n, "version": v, "purl": purl})
        })
        .collect()
}

/// PEP 503 name normalization.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn random_urn() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return "urn:uuid:00000000-0000-4000-8000-000000000000".into();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
