//! Verifies the OpenSSF model signing samples in `../shared/data/oms/` (made by model_signing
//! 1.1.1: P-256, P-384, certificate chain, 256-byte shards) and every upstream cross-version
//! vector in `../shared/data/oms/upstream-vectors/` (model_signing v0.2.0–v1.1.0, key and
//! certificate methods). The Sigstore (keyless) vectors are parsed and refused with the precise
//! reason: verifying them needs the Sigstore trust root and Rekor, which this offline build
//! does not implement. Skips with a notice when the folder is absent, unless
//! `AIGIS_REQUIRE_SHARED=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::path::{Path, PathBuf};

use aigis_supply::signing::keys::{load_signing_key, load_verifying_key};
use aigis_supply::signing::sigstore::SigstorePolicy;
use aigis_supply::signing::x509::pem_certificates;
use aigis_supply::signing::{
    Bundle, Material, Problem, SigningError, Trust, VerifyOptions, key_hint, verify_model,
};

fn oms() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/oms");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("AIGIS_REQUIRE_SHARED").as_deref() != Ok("1"),
        "AIGIS_REQUIRE_SHARED=1 but {} is missing",
        dir.display()
    );
    eprintln!(
        "notice: {} not found; skipping the OMS vectors",
        dir.display()
    );
    None
}

/// Sigstore's public-good trusted root, as the pinned `sigstore` PyPI package ships it (found
/// through `AIGIS_PYTHON`; `None` without it).
fn sigstore_trusted_root() -> Option<Vec<u8>> {
    let python = std::env::var_os("AIGIS_PYTHON").filter(|p| !p.is_empty())?;
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import os, sigstore; print(os.path.dirname(sigstore.__file__))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(dir.trim())
        .join("_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json");
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn key_trust(path: &Path) -> Trust {
    Trust::Keys(vec![load_verifying_key(path).unwrap()])
}

fn cert_trust(paths: &[PathBuf]) -> Trust {
    let mut anchors = Vec::new();
    for p in paths {
        anchors.extend(pem_certificates(&std::fs::read_to_string(p).unwrap(), "test").unwrap());
    }
    Trust::Certificates(anchors)
}

fn verify(
    model: &Path,
    sig: &Path,
    trust: &Trust,
) -> Result<aigis_supply::signing::Verified, SigningError> {
    // The upstream v1.0.1+ vectors hold an `ignore-me` file that their verifier ignores.
    let ignore_me = sig.with_file_name("ignore-me");
    let opts = VerifyOptions {
        signature_path: Some(sig.to_path_buf()),
        ignore_paths: if ignore_me.exists() {
            vec![ignore_me]
        } else {
            vec![]
        },
        ..VerifyOptions::default()
    };
    verify_model(model, &std::fs::read(sig).unwrap(), trust, &opts)
}

#[test]
fn samples_verify() {
    let Some(d) = oms() else { return };
    let model = d.join("model");
    let p256 = key_trust(&d.join("ec-p256-public.pem"));
    let p384 = key_trust(&d.join("ec-p384-public.pem"));
    let v = verify(&model, &d.join("model.p256.sig"), &p256).unwrap();
    assert_eq!(v.manifest.resources.len(), 6);
    assert_eq!(
        v.root_digest,
        "a8209c452d0f8162cfdd054b4ba2ea6b77d57073b182cd85fd145dfcf793f446"
    );
    assert_eq!(v.manifest.resources[0].name, "a/b.bin", "component order");
    verify(&model, &d.join("model.p384.sig"), &p384).unwrap();
    // 256-byte shards: shard_size written as 256.0 by model_signing 1.1.1; empty.dat is absent
    // from the manifest, so it is reported as a warning.
    let v = verify(&model, &d.join("model.shards256.sig"), &p256).unwrap();
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].starts_with("empty.dat"));
    let chain = cert_trust(&[d.join("pki/ca-cert.pem")]);
    let v = verify(&model, &d.join("model.cert.sig"), &chain).unwrap();
    assert!(
        v.signers[0]
            .subject
            .as_deref()
            .unwrap()
            .contains("model-signer@example.com")
    );
}

#[test]
fn samples_reject_the_wrong_key_and_method() {
    let Some(d) = oms() else { return };
    let model = d.join("model");
    let p384 = key_trust(&d.join("ec-p384-public.pem"));
    let err = verify(&model, &d.join("model.p256.sig"), &p384).unwrap_err();
    assert!(matches!(err, SigningError::KeyMismatch { .. }), "{err}");
    // An intermediate alone is not a root of trust for the chain method… it is, if trusted:
    // but a CA that did not issue the chain is refused.
    let wrong =
        cert_trust(&[d.join("upstream-vectors/scripts/tests/keys/certificate/ca-cert.pem")]);
    let err = verify(&model, &d.join("model.cert.sig"), &wrong).unwrap_err();
    assert!(matches!(err, SigningError::Certificate { .. }), "{err}");
    let p256 = key_trust(&d.join("ec-p256-public.pem"));
    let err = verify(&model, &d.join("model.cert.sig"), &p256).unwrap_err();
    assert!(matches!(err, SigningError::BadSignature { .. }), "{err}");
}

#[test]
fn sample_payload_matches_the_decoded_copy() {
    let Some(d) = oms() else { return };
    let bundle = Bundle::parse(&std::fs::read(d.join("model.p256.sig")).unwrap()).unwrap();
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("model.p256.payload.json")).unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&bundle.payload).unwrap();
    assert_eq!(got, want);
    let key = load_verifying_key(&d.join("ec-p256-public.pem")).unwrap();
    let Material::PublicKey { hint, .. } = bundle.material else {
        panic!()
    };
    assert_eq!(hint.unwrap(), key_hint(&key));
    // The private test keys are SEC1 `EC PRIVATE KEY` files.
    let sk = load_signing_key(&d.join("ec-p256-private.pem")).unwrap();
    assert_eq!(sk.verifying_key(), &key);
}

#[test]
fn a_changed_sample_names_the_file() {
    let Some(d) = oms() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    copy_dir(&d.join("model"), &model);
    std::fs::write(model.join("a/b.bin"), b"tampered!!").unwrap();
    std::fs::write(model.join("new.txt"), b"x").unwrap();
    std::fs::remove_file(model.join("config.json")).unwrap();
    let p256 = key_trust(&d.join("ec-p256-public.pem"));
    let err = verify(&model, &d.join("model.p256.sig"), &p256).unwrap_err();
    let SigningError::Mismatch { problems } = err else {
        panic!("{err}")
    };
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::HashMismatch { name, .. } if name == "a/b.bin"))
    );
    assert!(problems.contains(&Problem::Missing {
        name: "config.json".into()
    }));
    assert!(problems.contains(&Problem::Extra {
        name: "new.txt".into()
    }));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::write(&dest, std::fs::read(e.path()).unwrap()).unwrap();
        }
    }
}

#[test]
fn upstream_cross_version_vectors() {
    let Some(d) = oms() else { return };
    let tests = d.join("upstream-vectors/scripts/tests");
    let keys = tests.join("keys/certificate");
    let mut seen = 0;
    let mut sigstore_seen = 0;
    let mut names: Vec<_> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('v'))
        .collect();
    names.sort();
    for name in names {
        let dir = tests.join(&name);
        let sig = dir.join("model.sig");
        // v0.3.1 and v1.0.0 elliptic-key vectors signed the single file `signme-1`.
        let single = !dir.join("signme-2").exists();
        let model = if single {
            dir.join("signme-1")
        } else {
            dir.clone()
        };
        let outcome = if name.ends_with("-elliptic-key") {
            verify(&model, &sig, &key_trust(&keys.join("signing-key-pub.pem")))
        } else if name.ends_with("-certificate") {
            verify(&model, &sig, &cert_trust(&[keys.join("ca-cert.pem")]))
        } else {
            let err =
                verify(&model, &sig, &key_trust(&keys.join("signing-key-pub.pem"))).unwrap_err();
            assert!(
                matches!(err, SigningError::Unsupported { ref what } if what.contains("Sigstore keyless")),
                "{name}: {err}"
            );
            let Some(root) = sigstore_trusted_root() else {
                continue;
            };
            let policy = |identity: &str| {
                Trust::Sigstore(
                    SigstorePolicy::from_trusted_root(
                        &root,
                        identity,
                        "https://sigstore.verify.ibm.com/oauth2",
                    )
                    .unwrap(),
                )
            };
            let err = verify(&model, &sig, &policy("mallory@example.com")).unwrap_err();
            assert!(
                err.to_string().contains("expected \"mallory@example.com\""),
                "{name}: {err}"
            );
            sigstore_seen += 1;
            verify(&model, &sig, &policy("stefanb@us.ibm.com"))
        };
        let v = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!v.manifest.resources.is_empty(), "{name}");
        seen += 1;
    }
    let expected_sigstore = if sigstore_trusted_root().is_some() {
        4
    } else {
        0
    };
    assert_eq!(
        sigstore_seen, expected_sigstore,
        "sigstore vectors verified offline"
    );
    assert_eq!(
        seen,
        9 + expected_sigstore,
        "key, certificate (and sigstore) vectors verified"
    );
}

/// Verifies the `v1.1.0-sigstore` vector after `change` edits its bundle JSON (`None` without
/// the shared data or the trusted root).
fn verify_changed_sigstore_vector(
    change: impl FnOnce(&mut serde_json::Value),
) -> Option<Result<aigis_supply::signing::Verified, SigningError>> {
    let d = oms()?;
    let root = sigstore_trusted_root()?;
    let dir = d.join("upstream-vectors/scripts/tests/v1.1.0-sigstore");
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.sig")).unwrap()).unwrap();
    change(&mut bundle);
    let policy = Trust::Sigstore(
        SigstorePolicy::from_trusted_root(
            &root,
            "stefanb@us.ibm.com",
            "https://sigstore.verify.ibm.com/oauth2",
        )
        .unwrap(),
    );
    let opts = VerifyOptions {
        signature_path: Some(dir.join("model.sig")),
        ignore_paths: vec![dir.join("ignore-me")],
        ..VerifyOptions::default()
    };
    Some(verify_model(
        &dir,
        &serde_json::to_vec(&bundle).unwrap(),
        &policy,
        &opts,
    ))
}

#[test]
fn sigstore_tampered_log_entry_is_refused() {
    let Some(outcome) = verify_changed_sigstore_vector(|bundle| {
        let t = bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap();
        bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"] =
            serde_json::json!((t + 1).to_string());
    }) else {
        return;
    };
    let err = outcome.unwrap_err();
    assert!(
        err.to_string()
            .contains("signed entry timestamp does not verify"),
        "{err}"
    );
}

/// The log entry records one signature; a second one in the envelope (which the certificate's
/// key might verify while the logged one does not) is refused, as sigstore-python does.
#[test]
fn sigstore_second_envelope_signature_is_refused() {
    let Some(outcome) = verify_changed_sigstore_vector(|bundle| {
        let sigs = bundle["dsseEnvelope"]["signatures"].as_array_mut().unwrap();
        let mut second = sigs[0].clone();
        second["keyid"] = serde_json::json!("other");
        sigs.push(second);
    }) else {
        return;
    };
    let err = outcome.unwrap_err();
    assert!(
        err.to_string().contains("exactly one DSSE signature"),
        "{err}"
    );
}
