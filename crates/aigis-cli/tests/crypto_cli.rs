//! `aigis keygen --sign` and `aigis digest` as users run them.
#![allow(clippy::unwrap_used, reason = "test")]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use aigis_crypto::digest::{DigestAlgo, TreeHasher};
use aigis_crypto::sign::{SignAlg, SigningKey, VerifyingKey};

fn aigis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aigis"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn keygen_sign_writes_a_0600_pkcs8_key_and_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    for alg in SignAlg::ALL {
        let path = dir.path().join(format!("{alg}.key"));
        let out = aigis(&["keygen", "--sign", alg.name(), "-o", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{alg}");
        let key = SigningKey::from_pem(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(key.alg(), alg);
        let public = VerifyingKey::from_pem(
            &std::fs::read_to_string(format!("{}.pub", path.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(&public, key.verifying_key());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.contains(&format!("# key id: {}", public.key_id())),
            "{stdout}"
        );

        // An existing key is never overwritten.
        let again = aigis(&["keygen", "--sign", alg.name(), "-o", path.to_str().unwrap()]);
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
        assert_eq!(
            SigningKey::from_pem(&std::fs::read_to_string(&path).unwrap())
                .unwrap()
                .verifying_key(),
            &public
        );
    }
    // Without -o the private key goes to stdout and the public key to stderr.
    let out = aigis(&["keygen", "--sign", "ed25519"]);
    assert!(out.status.success());
    let key = SigningKey::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let public = VerifyingKey::from_pem(&String::from_utf8(out.stderr).unwrap()).unwrap();
    assert_eq!(&public, key.verifying_key());

    let out = aigis(&["keygen", "--sign", "rsa"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mldsa65-ed25519"));
}

#[test]
fn digest_prints_the_canonical_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/weights.bin"), vec![3u8; 300_000]).unwrap();
    std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
    for (algo, name) in [
        (DigestAlgo::Sha256, "sha256"),
        (DigestAlgo::Blake3, "blake3"),
    ] {
        let out = aigis(&["digest", "--algo", name, dir.path().to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = TreeHasher::new(algo)
            .hash(dir.path(), &|_| {})
            .unwrap()
            .to_json();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{expected}\n")
        );
    }
    let manifest = dir.path().join("manifest.json");
    let out = aigis(&[
        "digest",
        "--format",
        "table",
        "-o",
        manifest.to_str().unwrap(),
        dir.path().join("sub").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("weights.bin") && table.contains("1 files, 300000 bytes, sha256"),
        "{table}"
    );
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .starts_with("{\"version\":1")
    );
}

#[test]
fn digest_refuses_symlinks_unless_recorded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"a").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
    let out = aigis(&["digest", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symlink"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aigis(&["digest", "--record-symlinks", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(r#""symlinks":[{"path":"link","target":"/etc/passwd"}]"#)
    );
}
