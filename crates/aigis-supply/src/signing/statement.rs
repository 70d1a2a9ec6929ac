//! The OMS in-toto statement: a model manifest (one resource per file or per shard) written as
//! `https://model_signing/signature/v1.0` predicate, and read back with every check a verifier
//! needs before trusting a single name in it.
//!
//! Layout (model_signing 1.x, also what aigis writes):
//!
//! ```text
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": MODEL_DIR_NAME, "digest": {"sha256": ROOT}}],
//!  "predicateType": "https://model_signing/signature/v1.0",
//!  "predicate": {"serialization": {"method": "files"|"shards", "hash_type": "sha256",
//!                                  "allow_symlinks": false, "shard_size": N,
//!                                  "ignore_paths": [..]},
//!                "resources": [{"name": PATH or PATH:START:END, "algorithm": ALG,
//!                               "digest": HEX}, ..]}}
//! ```
//!
//! `ROOT` is SHA-256 over the raw resource digests concatenated in the listed order; resources
//! are listed by path components ([`cmp_path_components`]). The v0.2 layout (predicate
//! `https://model_signing/Digests/v0.1`, one subject per file) is read for compatibility.

use std::collections::BTreeSet;

use aigis_crypto::digest::{check_relative_path, cmp_path_components};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SigningError;

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The OMS predicate type (model_signing ≥ 0.3).
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The predicate type of model_signing 0.2 (read only).
pub const PREDICATE_TYPE_V02: &str = "https://model_signing/Digests/v0.1";
/// The DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest number of resources accepted in a statement.
pub const MAX_RESOURCES: usize = 1_000_000;
/// Largest statement (DSSE payload) accepted, in bytes.
pub const MAX_STATEMENT_LEN: usize = 128 * 1024 * 1024;
/// Largest `ignore_paths` list accepted.
pub const MAX_IGNORE_PATHS: usize = 10_000;
/// Git paths model_signing ignores by default (`--ignore-git-paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];
/// The aigis extension member listing empty files in shard mode (model_signing 1.1.1 drops
/// them from shard manifests, so without it an added or removed empty file goes unnoticed).
pub const EMPTY_FILES_MEMBER: &str = "aigis_empty_files";

/// How files become resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file, named by its path.
    Files,
    /// One resource per `shard_size` range of each file, named `PATH:START:END`.
    Shards {
        /// Bytes per shard.
        shard_size: u64,
    },
}

/// The per-resource hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    /// SHA-256 (the default and what every OMS verifier supports).
    Sha256,
    /// BLAKE3 (files mode only, as in model_signing).
    Blake3,
}

impl HashType {
    /// The `hash_type` name.
    pub fn name(self) -> &'static str {
        match self {
            HashType::Sha256 => "sha256",
            HashType::Blake3 => "blake3",
        }
    }
}

/// The `serialization` member: how to recompute the manifest from a model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    /// Files or shards.
    pub method: Method,
    /// Resource hash.
    pub hash_type: HashType,
    /// Whether symlinks (inside the model) were followed.
    pub allow_symlinks: bool,
    /// Paths (relative to the model) left out of the manifest.
    pub ignore_paths: Vec<String>,
}

impl Serialization {
    /// The resource `algorithm` name: `sha256`, `blake3` or `sha256-sharded-N`.
    pub fn algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash_type.name().to_string(),
            Method::Shards { shard_size } => {
                format!("{}-sharded-{shard_size}", self.hash_type.name())
            }
        }
    }
}

/// One manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `PATH` (files) or `PATH:START:END` (shards); `.` is the model itself when it is a file.
    pub name: String,
    /// Lowercase hex digest.
    pub digest: String,
}

/// A model manifest: what a signature says the model is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelManifest {
    /// The subject name (the model directory's name; informative only).
    pub model_name: String,
    /// How the resources were computed.
    pub serialization: Serialization,
    /// Resources in manifest order.
    pub resources: Vec<Resource>,
    /// Shard mode, aigis-signed: the empty files (which have no shard). `None` when the
    /// signer did not record them (model_signing).
    pub empty_files: Option<Vec<String>>,
    /// True for the model_signing 0.2 layout, which has no serialization record and no root
    /// digest.
    pub legacy_v02: bool,
}

impl ModelManifest {
    /// SHA-256 over the raw resource digests in manifest order (the subject digest).
    pub fn root_digest(&self) -> Result<String, SigningError> {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for r in &self.resources {
            let raw = hex::decode(&r.digest).map_err(|_| SigningError::Statement {
                reason: format!("resource {:?}: digest is not hex", r.name),
            })?;
            ctx.update(&raw);
        }
        Ok(hex::encode(ctx.finish()))
    }

    /// Sorts resources into canonical order (path components, then shard start).
    pub fn sort(&mut self) {
        self.resources.sort_by(|a, b| {
            let (pa, sa) = split_shard_name(&a.name);
            let (pb, sb) = split_shard_name(&b.name);
            cmp_path_components(pa, pb).then(sa.cmp(&sb))
        });
    }

    /// The statement JSON (pretty-printed, as model_signing writes it).
    pub fn to_statement(&self) -> Result<Vec<u8>, SigningError> {
        let algorithm = self.serialization.algorithm();
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| json!({"name": r.name, "algorithm": algorithm, "digest": r.digest}))
            .collect();
        let mut serialization = json!({
            "method": match self.serialization.method { Method::Files => "files", Method::Shards { .. } => "shards" },
            "hash_type": self.serialization.hash_type.name(),
            "allow_symlinks": self.serialization.allow_symlinks,
        });
        if let Method::Shards { shard_size } = self.serialization.method {
            serialization["shard_size"] = json!(shard_size);
        }
        if !self.serialization.ignore_paths.is_empty() {
            serialization["ignore_paths"] = json!(self.serialization.ignore_paths);
        }
        let mut predicate = json!({"serialization": serialization, "resources": resources});
        if let Some(empty) = &self.empty_files {
            predicate[EMPTY_FILES_MEMBER] = json!(empty);
        }
        let statement = json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest()?}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        });
        serde_json::to_vec_pretty(&statement).map_err(|e| SigningError::Statement {
            reason: format!("cannot serialize: {e}"),
        })
    }

    /// Parses and checks a statement: types, subject digest, names, duplicates, limits.
    pub fn from_statement(payload: &[u8]) -> Result<Self, SigningError> {
        if payload.len() > MAX_STATEMENT_LEN {
            return Err(SigningError::TooLarge {
                what: "statement".into(),
                len: payload.len(),
                max: MAX_STATEMENT_LEN,
            });
        }
        let wire: StatementWire =
            serde_json::from_slice(payload).map_err(|e| SigningError::Statement {
                reason: format!(
                    "not an in-toto statement (line {} column {}): {e}",
                    e.line(),
                    e.column()
                ),
            })?;
        if wire.statement_type != STATEMENT_TYPE {
            return Err(SigningError::Statement {
                reason: format!(
                    "_type is {:?}, expected {STATEMENT_TYPE:?}",
                    wire.statement_type
                ),
            });
        }
        let manifest = match wire.predicate_type.as_str() {
            PREDICATE_TYPE => from_v1(wire)?,
            PREDICATE_TYPE_V02 => from_v02(wire)?,
            other => {
                return Err(SigningError::Statement {
                    reason: format!(
                        "predicateType is {other:?}, expected {PREDICATE_TYPE:?}; this is not an OpenSSF model signature"
                    ),
                });
            }
        };
        check_names(&manifest)?;
        Ok(manifest)
    }
}

/// Splits `PATH:START:END` into `(PATH, Some((START, END)))`; plain names give `None`.
pub fn split_shard_name(name: &str) -> (&str, Option<(u64, u64)>) {
    let mut parts = name.rsplitn(3, ':');
    let (Some(end), Some(start), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return (name, None);
    };
    match (start.parse(), end.parse()) {
        (Ok(s), Ok(e)) => (path, Some((s, e))),
        _ => (name, None),
    }
}

#[derive(Deserialize)]
struct StatementWire {
    #[serde(rename = "_type")]
    statement_type: String,
    #[serde(default)]
    subject: Vec<SubjectWire>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default)]
    predicate: Option<PredicateWire>,
}

#[derive(Deserialize)]
struct SubjectWire {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PredicateWire {
    serialization: Option<SerializationWire>,
    #[serde(default)]
    resources: Vec<ResourceWire>,
    #[serde(default, rename = "aigis_empty_files")]
    empty_files: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct SerializationWire {
    method: String,
    #[serde(default = "default_hash")]
    hash_type: String,
    #[serde(default)]
    allow_symlinks: bool,
    #[serde(default)]
    shard_size: Option<serde_json::Number>,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

fn default_hash() -> String {
    "sha256".into()
}

#[derive(Deserialize)]
struct ResourceWire {
    name: String,
    #[serde(default)]
    algorithm: String,
    digest: String,
}

fn statement_err(reason: impl Into<String>) -> SigningError {
    SigningError::Statement {
        reason: reason.into(),
    }
}

/// model_signing 1.1.1 writes `shard_size` through a protobuf `Struct`, so it arrives as a
/// float (`256.0`); we accept any integral value and write integers.
fn parse_shard_size(n: Option<&serde_json::Number>) -> Result<u64, SigningError> {
    let n = n.ok_or_else(|| statement_err("shards serialization without shard_size"))?;
    let size = match n.as_u64() {
        Some(v) => Some(v),
        None => n.as_f64().and_then(|f| {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked integral and in range first"
            )]
            (f.fract() == 0.0 && (1.0..=9.0e15).contains(&f)).then_some(f as u64)
        }),
    };
    match size {
        Some(s) if s >= 1 => Ok(s),
        _ => Err(statement_err(format!(
            "shard_size {n} is not a positive integer"
        ))),
    }
}

fn from_v1(wire: StatementWire) -> Result<ModelManifest, SigningError> {
    let [subject] = wire.subject.as_slice() else {
        return Err(statement_err(format!(
            "expected exactly one subject, found {}",
            wire.subject.len()
        )));
    };
    let expected_root = subject
        .digest
        .get("sha256")
        .ok_or_else(|| statement_err("subject has no sha256 digest"))?
        .to_ascii_lowercase();
    let predicate = wire
        .predicate
        .ok_or_else(|| statement_err("statement has no predicate"))?;
    let ser = predicate
        .serialization
        .ok_or_else(|| statement_err("predicate has no serialization"))?;
    let hash_type = match ser.hash_type.as_str() {
        "sha256" => HashType::Sha256,
        "blake3" => HashType::Blake3,
        other => {
            return Err(SigningError::Unsupported {
                what: format!("hash_type {other:?} (aigis verifies sha256 and blake3)"),
            });
        }
    };
    let method = match ser.method.as_str() {
        "files" => Method::Files,
        "shards" => Method::Shards {
            shard_size: parse_shard_size(ser.shard_size.as_ref())?,
        },
        other => {
            return Err(statement_err(format!(
                "unknown serialization method {other:?}"
            )));
        }
    };
    if ser.ignore_paths.len() > MAX_IGNORE_PATHS {
        return Err(SigningError::TooLarge {
            what: "ignore_paths".into(),
            len: ser.ignore_paths.len(),
            max: MAX_IGNORE_PATHS,
        });
    }
    for p in &ser.ignore_paths {
        check_relative_path(p).map_err(|e| SigningError::UnsafePath {
            name: p.clone(),
            reason: format!("in ignore_paths: {e}"),
        })?;
    }
    if predicate.resources.len() > MAX_RESOURCES {
        return Err(SigningError::TooLarge {
            what: "resources".into(),
            len: predicate.resources.len(),
            max: MAX_RESOURCES,
        });
    }
    let serialization = Serialization {
        method,
        hash_type,
        allow_symlinks: ser.allow_symlinks,
        ignore_paths: ser.ignore_paths,
    };
    let algorithm = serialization.algorithm();
    let resources = predicate
        .resources
        .into_iter()
        .map(|r| {
            if !r.algorithm.is_empty() && r.algorithm != algorithm {
                return Err(statement_err(format!(
                    "resource {:?} has algorithm {:?}, but the serialization implies {algorithm:?}",
                    r.name, r.algorithm
                )));
            }
            check_digest(&r.name, &r.digest)?;
            Ok(Resource {
                name: r.name,
                digest: r.digest.to_ascii_lowercase(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = ModelManifest {
        model_name: subject.name.clone(),
        serialization,
        resources,
        empty_files: predicate.empty_files,
        legacy_v02: false,
    };
    let actual = manifest.root_digest()?;
    if actual != expected_root {
        return Err(SigningError::SubjectDigest {
            expected: expected_root,
            actual,
        });
    }
    Ok(manifest)
}

fn from_v02(wire: StatementWire) -> Result<ModelManifest, SigningError> {
    if wire.subject.len() > MAX_RESOURCES {
        return Err(SigningError::TooLarge {
            what: "subjects".into(),
            len: wire.subject.len(),
            max: MAX_RESOURCES,
        });
    }
    let resources = wire
        .subject
        .into_iter()
        .map(|s| {
            let digest = s
                .digest
                .get("sha256")
                .ok_or_else(|| statement_err(format!("subject {:?} has no sha256 digest", s.name)))?
                .to_ascii_lowercase();
            check_digest(&s.name, &digest)?;
            Ok(Resource {
                name: s.name,
                digest,
            })
        })
        .collect::<Result<Vec<_>, SigningError>>()?;
    Ok(ModelManifest {
        model_name: String::new(),
        serialization: Serialization {
            method: Method::Files,
            hash_type: HashType::Sha256,
            allow_symlinks: false,
            ignore_paths: Vec::new(),
        },
        resources,
        empty_files: None,
        legacy_v02: true,
    })
}

fn check_digest(name: &str, digest: &str) -> Result<(), SigningError> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(statement_err(format!(
            "resource {name:?}: digest is not 64 hex digits"
        )));
    }
    Ok(())
}

/// Names must be safe relative paths (or `.`), shard ranges well-formed, and unique.
fn check_names(m: &ModelManifest) -> Result<(), SigningError> {
    let mut seen = BTreeSet::new();
    for r in &m.resources {
        let path = match m.serialization.method {
            Method::Files => r.name.as_str(),
            Method::Shards { .. } => match split_shard_name(&r.name) {
                (path, Some((start, end))) if start < end => path,
                _ => {
                    return Err(SigningError::UnsafePath {
                        name: r.name.clone(),
                        reason: "shard names are PATH:START:END with START < END".into(),
                    });
                }
            },
        };
        if path != "." {
            check_relative_path(path).map_err(|e| SigningError::UnsafePath {
                name: r.name.clone(),
                reason: e.to_string(),
            })?;
        }
        if !seen.insert(r.name.as_str()) {
            return Err(SigningError::DuplicatePath {
                name: r.name.clone(),
            });
        }
    }
    for p in m.empty_files.iter().flatten() {
        check_relative_path(p).map_err(|e| SigningError::UnsafePath {
            name: p.clone(),
            reason: format!("in {EMPTY_FILES_MEMBER}: {e}"),
        })?;
    }
    Ok(())
}
