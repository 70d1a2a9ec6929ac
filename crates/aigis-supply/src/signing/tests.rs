use std::fs;
use std::path::Path;

use aigis_crypto::sign::{SignAlg, SigningKey};

use super::*;

fn no_progress(_: u64) {}

fn model(root: &Path) {
    fs::create_dir_all(root.join("a")).unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join("a/b.bin"), [1u8; 1000]).unwrap();
    fs::write(root.join("a.txt"), b"hello").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join(".git/HEAD"), b"ref").unwrap();
    fs::write(root.join("weights.bin"), vec![7u8; 5000]).unwrap();
}

fn sign(root: &Path, keys: &[&SigningKey], opts: &SignOptions) -> Vec<u8> {
    sign_model(root, keys, Identity::Key, opts, &no_progress)
        .unwrap()
        .into_bytes()
}

fn trust(keys: &[&SigningKey]) -> Trust {
    Trust::Keys(keys.iter().map(|k| k.verifying_key().clone()).collect())
}

#[test]
fn files_round_trip_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let bundle = sign(&root, &[&key], &SignOptions::default());
    let v = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    let names: Vec<_> = v
        .manifest
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["a/b.bin", "a.txt", "empty", "weights.bin"]);
    assert_eq!(v.manifest.model_name, "m");
    fs::write(root.join("a.txt"), b"HELLO").unwrap();
    let err = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("hash mismatch for \"a.txt\""),
        "{err}"
    );
}

#[test]
fn shards_detect_added_and_removed_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let key = SigningKey::generate(SignAlg::EcdsaP384).unwrap();
    let opts = SignOptions {
        method: Method::Shards { shard_size: 1024 },
        ..SignOptions::default()
    };
    let bundle = sign(&root, &[&key], &opts);
    let v = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    assert_eq!(
        v.manifest.empty_files.as_deref(),
        Some(&["empty".to_string()][..])
    );
    assert!(
        v.manifest
            .resources
            .iter()
            .any(|r| r.name == "weights.bin:4096:5000")
    );
    fs::write(root.join("new-empty"), b"").unwrap();
    let err = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("new-empty (empty file)"), "{err}");
    fs::remove_file(root.join("new-empty")).unwrap();
    fs::remove_file(root.join("empty")).unwrap();
    let err = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("missing: \"empty (empty file)\""),
        "{err}"
    );
}

#[test]
fn pq_profile_dual_signature_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let ec = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let pq = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let classical = sign(&root, &[&ec], &SignOptions::default());
    let require = VerifyOptions {
        require_pq: true,
        ..VerifyOptions::default()
    };
    let err = verify_model(&root, &classical, &trust(&[&ec]), &require).unwrap_err();
    assert!(matches!(err, SigningError::PqRequired { .. }), "{err}");
    let dual = sign(&root, &[&ec, &pq], &SignOptions::default());
    let v = verify_model(&root, &dual, &trust(&[&ec, &pq]), &require).unwrap();
    assert_eq!(v.signers.len(), 2);
    // The PQ key alone verifies the dual bundle too.
    verify_model(&root, &dual, &trust(&[&pq]), &require).unwrap();
    let other = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let err = verify_model(&root, &dual, &trust(&[&other]), &VerifyOptions::default()).unwrap_err();
    assert!(matches!(err, SigningError::KeyMismatch { .. }), "{err}");
    let pq_only = sign(&root, &[&pq], &SignOptions::default());
    verify_model(&root, &pq_only, &trust(&[&pq]), &require).unwrap();
}

#[test]
fn ignore_unsigned_and_ignore_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let opts = SignOptions {
        ignore_paths: vec![root.join("weights.bin")],
        ..SignOptions::default()
    };
    let bundle = sign(&root, &[&key], &opts);
    let v = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    assert!(
        v.manifest
            .serialization
            .ignore_paths
            .contains(&"weights.bin".to_string())
    );
    assert!(
        v.manifest
            .serialization
            .ignore_paths
            .contains(&".git".to_string())
    );
    fs::write(root.join("unsigned.txt"), b"u").unwrap();
    let err = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("extra: \"unsigned.txt\""), "{err}");
    let lenient = VerifyOptions {
        ignore_unsigned_files: true,
        ..VerifyOptions::default()
    };
    verify_model(&root, &bundle, &trust(&[&key]), &lenient).unwrap();
}

/// A signature over an empty model lists no file: with `--ignore-unsigned-files` every file
/// of any model would be ignored, so it must not verify one.
#[test]
fn ignore_unsigned_refuses_a_signature_that_covers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    fs::create_dir(&root).unwrap();
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let bundle = sign(&root, &[&key], &SignOptions::default());
    verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    fs::write(root.join("weights.bin"), b"anything").unwrap();
    let lenient = VerifyOptions {
        ignore_unsigned_files: true,
        ..VerifyOptions::default()
    };
    let err = verify_model(&root, &bundle, &trust(&[&key]), &lenient).unwrap_err();
    assert!(err.to_string().contains("covers no file"), "{err}");
}

#[test]
fn symlinks_inside_followed_only_when_allowed_and_escapes_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    std::os::unix::fs::symlink("a.txt", root.join("alias")).unwrap();
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let err = sign_model(
        &root,
        &[&key],
        Identity::Key,
        &SignOptions::default(),
        &no_progress,
    )
    .unwrap_err();
    assert!(matches!(err, SigningError::Symlink { .. }), "{err}");
    let allow = SignOptions {
        allow_symlinks: true,
        ..SignOptions::default()
    };
    let bundle = sign(&root, &[&key], &allow);
    verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    fs::write(dir.path().join("outside"), b"secret").unwrap();
    std::os::unix::fs::symlink("../outside", root.join("escape")).unwrap();
    let err = sign_model(&root, &[&key], Identity::Key, &allow, &no_progress).unwrap_err();
    assert!(
        err.to_string().contains("outside the model directory"),
        "{err}"
    );
}

#[test]
fn single_file_model_uses_dot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.safetensors");
    fs::write(&file, b"weights").unwrap();
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let bundle = sign(&file, &[&key], &SignOptions::default());
    let v = verify_model(&file, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap();
    assert_eq!(v.manifest.resources[0].name, ".");
    assert_eq!(v.manifest.model_name, "model.safetensors");
}

#[test]
fn python_repr_matches_known_outputs() {
    assert_eq!(verify::python_bytes_repr_for_test(b"a'b"), "b\"a'b\"");
    assert_eq!(
        verify::python_bytes_repr_for_test(b"{\n\"x\": 1}\t\\\x01"),
        "b'{\\n\"x\": 1}\\t\\\\\\x01'"
    );
}

#[test]
fn provenance_records_and_matches_the_model() {
    use super::provenance::{Input, Run, record, verify};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let data = dir.path().join("data.jsonl");
    fs::write(&data, b"{}\n").unwrap();
    let key = SigningKey::generate(SignAlg::MlDsa65Ed25519).unwrap();
    let run = Run {
        builder_id: "https://ci.example/trainer".into(),
        parameters: vec![("epochs".into(), "3".into())],
        inputs: vec![Input {
            kind: "dataset".into(),
            name: "data".into(),
            path: Some(data),
            uri: None,
        }],
        ..Run::default()
    };
    // Progress hears of every byte hashed: the model's files (not `.git`) and the dataset's 3.
    let model_bytes = 1000 + 5 + 5000;
    let hashed = std::sync::atomic::AtomicU64::new(0);
    let count = |n| {
        hashed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    let env = record(&root, &run, &[&key], None, &count).unwrap();
    assert_eq!(
        hashed.swap(0, std::sync::atomic::Ordering::Relaxed),
        model_bytes + 3
    );
    let v = verify(
        env.as_bytes(),
        &[key.verifying_key().clone()],
        true,
        &root,
        None,
        &count,
    )
    .unwrap();
    assert_eq!(
        hashed.load(std::sync::atomic::Ordering::Relaxed),
        model_bytes
    );
    assert_eq!(
        v.statement["predicate"]["runDetails"]["builder"]["id"],
        "https://ci.example/trainer"
    );
    assert!(
        v.statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"]
            .is_string()
    );
    fs::write(root.join("a.txt"), b"changed").unwrap();
    let err = verify(
        env.as_bytes(),
        &[key.verifying_key().clone()],
        false,
        &root,
        None,
        &no_progress,
    )
    .unwrap_err();
    assert!(matches!(err, SigningError::Mismatch { .. }), "{err}");
    let other = SigningKey::generate(SignAlg::Ed25519).unwrap();
    let err = verify(
        env.as_bytes(),
        &[other.verifying_key().clone()],
        false,
        &root,
        None,
        &no_progress,
    )
    .unwrap_err();
    assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");
}

/// `--ignore-unsigned-files` hashes the signed paths directly; a directory on such a path that
/// was replaced by a symlink (here escaping the model) must be refused like the walker does.
#[test]
fn ignore_unsigned_refuses_a_symlinked_directory_on_a_signed_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let bundle = sign(&root, &[&key], &SignOptions::default());
    // Same bytes, but now outside the model, reached through `a -> ../outside`.
    fs::rename(root.join("a"), dir.path().join("outside")).unwrap();
    std::os::unix::fs::symlink("../outside", root.join("a")).unwrap();
    let lenient = VerifyOptions {
        ignore_unsigned_files: true,
        ..VerifyOptions::default()
    };
    let err = verify_model(&root, &bundle, &trust(&[&key]), &lenient).unwrap_err();
    assert!(
        matches!(&err, SigningError::Symlink { path, .. } if path.ends_with("m/a")),
        "{err}"
    );
    let err = verify_model(&root, &bundle, &trust(&[&key]), &VerifyOptions::default()).unwrap_err();
    assert!(matches!(err, SigningError::Symlink { .. }), "{err}");
}

/// Bytes appended to a file whose size is a multiple of the shard size only add shards; the
/// size check reports them even when extra resources are not (`--ignore-unsigned-files`).
#[test]
fn shards_report_bytes_appended_at_a_shard_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("m");
    model(&root);
    fs::write(root.join("weights.bin"), vec![7u8; 4096]).unwrap();
    let key = SigningKey::generate(SignAlg::EcdsaP256).unwrap();
    let opts = SignOptions {
        method: Method::Shards { shard_size: 1024 },
        ..SignOptions::default()
    };
    let bundle = sign(&root, &[&key], &opts);
    let lenient = VerifyOptions {
        ignore_unsigned_files: true,
        ..VerifyOptions::default()
    };
    verify_model(&root, &bundle, &trust(&[&key]), &lenient).unwrap();
    let mut grown = vec![7u8; 4096];
    grown.extend_from_slice(b"appended payload");
    fs::write(root.join("weights.bin"), grown).unwrap();
    for opts in [&lenient, &VerifyOptions::default()] {
        let err = verify_model(&root, &bundle, &trust(&[&key]), opts).unwrap_err();
        let SigningError::Mismatch { problems } = err else {
            panic!("{err}")
        };
        assert!(
            problems.contains(&Problem::SizeChanged {
                name: "weights.bin".into(),
                signed: 4096,
                actual: 4112,
            }),
            "{problems:?}"
        );
    }
}
