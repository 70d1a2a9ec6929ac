//! Training/conversion provenance: an in-toto Statement with a SLSA provenance v1 predicate,
//! signed as a DSSE envelope (any aigis-crypto key, including the post-quantum composite).
//!
//! Subjects are the model (name = model directory name, digest = the OMS subject digest, i.e.
//! SHA-256 over the per-file SHA-256 digests in path-component order) and each of its files
//! (`MODEL/PATH`). Inputs (datasets, base model) are `resolvedDependencies` with the same
//! kind of digest. [`verify`] checks the signatures and that a model on disk matches a subject.

use std::path::{Path, PathBuf};

use aigis_crypto::dsse::{Envelope, TrustedKeys};
use aigis_crypto::sign::{SigningKey, VerifyingKey};
use serde_json::{Value, json};

use super::SigningError;
use super::hashing::{self, HashOptions};
use super::statement::{GIT_PATHS, HashType, Method, ModelManifest, PAYLOAD_TYPE, STATEMENT_TYPE};

/// The SLSA provenance v1 predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The default build type: an ML training or conversion run described by aigis.
pub const DEFAULT_BUILD_TYPE: &str = "https://aigis.dev/provenance/ml-run/v1";
/// Most parameters recorded.
pub const MAX_PARAMETERS: usize = 1000;

/// One input artifact of the run.
#[derive(Debug, Clone)]
pub struct Input {
    /// `dataset` or `base_model` (free text, recorded as the name prefix).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Local copy to hash (file or directory).
    pub path: Option<PathBuf>,
    /// A URI where it came from.
    pub uri: Option<String>,
}

/// What the run was.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// SLSA `builder.id` (who/what ran it).
    pub builder_id: String,
    /// SLSA `buildType` ([`DEFAULT_BUILD_TYPE`] when empty).
    pub build_type: String,
    /// `externalParameters` (hyper-parameters, command line, …), as key/value strings.
    pub parameters: Vec<(String, String)>,
    /// Inputs.
    pub inputs: Vec<Input>,
    /// `metadata.invocationId`.
    pub invocation_id: Option<String>,
    /// `metadata.startedOn` (RFC 3339).
    pub started_on: Option<String>,
    /// `metadata.finishedOn` (RFC 3339); now when absent.
    pub finished_on: Option<String>,
}

fn files_serialization() -> super::Serialization {
    super::Serialization {
        method: Method::Files,
        hash_type: HashType::Sha256,
        allow_symlinks: false,
        ignore_paths: GIT_PATHS.iter().map(|s| (*s).to_string()).collect(),
    }
}

/// Hashes a model (or dataset) directory or file: its file manifest. `progress` is told the
/// bytes hashed as they are.
pub fn manifest_of(
    path: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ModelManifest, SigningError> {
    hashing::hash_model(
        path,
        &files_serialization(),
        &HashOptions {
            threads,
            only: None,
        },
        progress,
    )
}

/// Builds the provenance statement for the model at `model`.
pub fn statement(
    model: &Path,
    run: &Run,
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Value, SigningError> {
    if run.parameters.len() > MAX_PARAMETERS {
        return Err(SigningError::TooLarge {
            what: "parameters".into(),
            len: run.parameters.len(),
            max: MAX_PARAMETERS,
        });
    }
    let m = manifest_of(model, threads, progress)?;
    let mut subjects = vec![json!({"name": m.model_name, "digest": {"sha256": m.root_digest()?}})];
    for r in &m.resources {
        let name = if r.name == "." {
            m.model_name.clone()
        } else {
            format!("{}/{}", m.model_name, r.name)
        };
        subjects.push(json!({"name": name, "digest": {"sha256": r.digest}}));
    }
    let mut deps = Vec::new();
    for i in &run.inputs {
        let mut d = json!({"name": format!("{}:{}", i.kind, i.name)});
        if let Some(p) = &i.path {
            d["digest"] = json!({"sha256": manifest_of(p, threads, progress)?.root_digest()?});
        }
        if let Some(u) = &i.uri {
            d["uri"] = json!(u);
        }
        deps.push(d);
    }
    let params: serde_json::Map<String, Value> = run
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut metadata = json!({
        "finishedOn": run.finished_on.clone().unwrap_or_else(aigis_report::time::now_rfc3339),
    });
    if let Some(s) = &run.started_on {
        metadata["startedOn"] = json!(s);
    }
    if let Some(id) = &run.invocation_id {
        metadata["invocationId"] = json!(id);
    }
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": if run.build_type.is_empty() { DEFAULT_BUILD_TYPE } else { run.build_type.as_str() },
                "externalParameters": params,
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": run.builder_id},
                "metadata": metadata,
            },
        },
    }))
}

/// Records provenance: the statement signed into a DSSE envelope (JSON).
pub fn record(
    model: &Path,
    run: &Run,
    keys: &[&SigningKey],
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String, SigningError> {
    if run.builder_id.is_empty() {
        return Err(SigningError::Statement {
            reason: "provenance needs a builder id (who or what ran the training or conversion)"
                .into(),
        });
    }
    let st = statement(model, run, threads, progress)?;
    let payload = serde_json::to_vec_pretty(&st).map_err(|e| SigningError::Statement {
        reason: e.to_string(),
    })?;
    let env =
        Envelope::sign(PAYLOAD_TYPE, &payload, keys).map_err(|e| SigningError::BadSignature {
            detail: e.to_string(),
        })?;
    Ok(env.to_json())
}

/// A verified provenance statement that matches a model.
#[derive(Debug, Clone)]
pub struct VerifiedProvenance {
    /// The statement.
    pub statement: Value,
    /// Key ids whose signatures verified.
    pub key_ids: Vec<String>,
    /// The model subject digest that matched.
    pub model_digest: String,
}

/// Verifies a provenance envelope: every key in `keys` signed it (and a post-quantum one did
/// when `require_pq`), it is an in-toto SLSA v1 statement, and the model at `model` matches a
/// subject (its subject digest, and every per-file subject of that model).
pub fn verify(
    envelope_json: &[u8],
    keys: &[VerifyingKey],
    require_pq: bool,
    model: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<VerifiedProvenance, SigningError> {
    let env = Envelope::from_json(envelope_json).map_err(|e| SigningError::Bundle {
        reason: format!("provenance envelope: {e}"),
    })?;
    let mut trust = TrustedKeys::new().with_threshold(keys.len().max(1));
    for k in keys {
        trust = trust.with_key(k.clone());
    }
    let verified = trust.verify(&env).map_err(|e| SigningError::BadSignature {
        detail: format!("provenance: {e}"),
    })?;
    if require_pq
        && !keys
            .iter()
            .any(|k| k.alg().is_post_quantum() && verified.key_ids().contains(&k.key_id()))
    {
        return Err(SigningError::PqRequired {
            found: keys
                .iter()
                .map(|k| k.alg().name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if verified.payload_type() != PAYLOAD_TYPE {
        return Err(SigningError::PayloadType {
            found: verified.payload_type().to_string(),
        });
    }
    let st: Value =
        serde_json::from_slice(verified.payload()).map_err(|e| SigningError::Statement {
            reason: format!("provenance payload is not JSON: {e}"),
        })?;
    if st["_type"] != STATEMENT_TYPE || st["predicateType"] != SLSA_PROVENANCE_V1 {
        return Err(SigningError::Statement {
            reason: format!(
                "provenance must be an in-toto Statement v1 with predicateType {SLSA_PROVENANCE_V1:?}, got {} / {}",
                st["_type"], st["predicateType"]
            ),
        });
    }
    let m = manifest_of(model, threads, progress)?;
    let root = m.root_digest()?;
    let subjects = st["subject"].as_array().cloned().unwrap_or_default();
    let digest_of = |s: &Value| s["digest"]["sha256"].as_str().map(str::to_ascii_lowercase);
    let Some(model_subject) = subjects
        .iter()
        .find(|s| digest_of(s).as_deref() == Some(root.as_str()))
    else {
        return Err(SigningError::Mismatch {
            problems: vec![super::Problem::Missing {
                name: format!(
                    "provenance subject with the model's digest sha256:{root} (the model is not an output of this run, or it changed)"
                ),
            }],
        });
    };
    let prefix = format!("{}/", model_subject["name"].as_str().unwrap_or_default());
    let mut problems = Vec::new();
    for s in &subjects {
        let Some(rel) = s["name"].as_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        match m.resources.iter().find(|r| r.name == rel) {
            Some(r) if Some(r.digest.clone()) == digest_of(s) => {}
            Some(r) => problems.push(super::Problem::HashMismatch {
                name: rel.to_string(),
                expected: digest_of(s).unwrap_or_default(),
                actual: r.digest.clone(),
            }),
            None => problems.push(super::Problem::Missing {
                name: rel.to_string(),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(SigningError::Mismatch { problems });
    }
    Ok(VerifiedProvenance {
        statement: st,
        key_ids: verified.key_ids().to_vec(),
        model_digest: root,
    })
}
