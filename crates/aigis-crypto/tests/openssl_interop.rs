//! Interop with a real peer, the `openssl` command: it reads our PKCS#8/SPKI PEM keys and
//! verifies our Ed25519 and ECDSA signatures (DSSE PAE messages), and we load its keys and
//! verify its signatures. Skips with a notice when `openssl` is not installed.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failing test should stop loudly"
)]

use std::path::Path;
use std::process::Command;

use aigis_crypto::dsse::pae;
use aigis_crypto::sign::{SignAlg, SigningKey, VerifyingKey};

fn openssl(args: &[&str]) -> Option<std::process::Output> {
    let out = Command::new("openssl").args(args).output().ok()?;
    Some(out)
}

fn have_openssl() -> bool {
    if openssl(&["version"]).is_some_and(|o| o.status.success()) {
        return true;
    }
    eprintln!("notice: openssl not found; skipping interop");
    false
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const CLASSICAL: [SignAlg; 3] = [SignAlg::Ed25519, SignAlg::EcdsaP256, SignAlg::EcdsaP384];

fn verify_args<'a>(alg: SignAlg, public: &'a str, sig: &'a str, msg: &'a str) -> Vec<&'a str> {
    match alg {
        SignAlg::Ed25519 => vec![
            "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", msg, "-sigfile", sig,
        ],
        SignAlg::EcdsaP256 => vec!["dgst", "-sha256", "-verify", public, "-signature", sig, msg],
        _ => vec!["dgst", "-sha384", "-verify", public, "-signature", sig, msg],
    }
}

#[test]
fn openssl_verifies_our_signatures_and_reads_our_keys() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let msg = pae("application/vnd.in-toto+json", b"{\"subject\":[]}");
    let msg_path = dir.path().join("msg");
    std::fs::write(&msg_path, &msg).unwrap();
    for alg in CLASSICAL {
        let key = SigningKey::generate(alg).unwrap();
        let (private, public, sig) = (
            dir.path().join(format!("{alg}.key")),
            dir.path().join(format!("{alg}.pub")),
            dir.path().join(format!("{alg}.sig")),
        );
        std::fs::write(&private, key.to_pem().unwrap().as_bytes()).unwrap();
        std::fs::write(&public, key.verifying_key().to_pem()).unwrap();
        std::fs::write(&sig, key.sign(&msg).unwrap()).unwrap();

        let out = openssl(&verify_args(alg, p(&public), p(&sig), p(&msg_path))).unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // openssl derives the same public key from our private key.
        let out = openssl(&["pkey", "-in", p(&private), "-pubout"]).unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            &VerifyingKey::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap(),
            key.verifying_key()
        );
    }
}

#[test]
fn we_read_openssl_keys_and_verify_its_signatures() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let msg = b"hello from openssl";
    let msg_path = dir.path().join("msg");
    std::fs::write(&msg_path, msg).unwrap();
    for (alg, genargs) in [
        (SignAlg::Ed25519, vec!["genpkey", "-algorithm", "ed25519"]),
        (
            SignAlg::EcdsaP256,
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
        ),
        (
            SignAlg::EcdsaP384,
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ],
        ),
    ] {
        let private = dir.path().join(format!("{alg}.key"));
        let sig = dir.path().join(format!("{alg}.sig"));
        let mut args = genargs.clone();
        args.extend(["-out", p(&private)]);
        assert!(openssl(&args).unwrap().status.success());
        let sign_args: Vec<&str> = match alg {
            SignAlg::Ed25519 => vec![
                "pkeyutl",
                "-sign",
                "-inkey",
                p(&private),
                "-rawin",
                "-in",
                p(&msg_path),
                "-out",
                p(&sig),
            ],
            SignAlg::EcdsaP256 => vec![
                "dgst",
                "-sha256",
                "-sign",
                p(&private),
                "-out",
                p(&sig),
                p(&msg_path),
            ],
            _ => vec![
                "dgst",
                "-sha384",
                "-sign",
                p(&private),
                "-out",
                p(&sig),
                p(&msg_path),
            ],
        };
        let out = openssl(&sign_args).unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = SigningKey::from_pem(&std::fs::read_to_string(&private).unwrap())
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(key.alg(), alg);
        key.verifying_key()
            .verify(msg, &std::fs::read(&sig).unwrap())
            .unwrap();
    }
}
