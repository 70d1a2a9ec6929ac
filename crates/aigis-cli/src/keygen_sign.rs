//! `aigis keygen --sign ALG [-o FILE]`: signing keys (the age half of `keygen` is separate).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use aigis_crypto::sign::{SignAlg, SigningKey};
use anyhow::Context;

/// Generates a signing key of `alg`.
///
/// With `out`: the PKCS#8 PEM private key goes to `out` (created with mode 0600; an existing
/// file is never overwritten), the SPKI PEM public key to `out.pub`, and the key id and public
/// key are printed. Without `out`: the private key is printed on stdout and the public key and
/// key id on stderr, so `> file` captures only the private key (as `age-keygen` does).
pub fn run(alg: SignAlg, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let key = SigningKey::generate(alg)?;
    let public = key.verifying_key();
    let key_id = public.key_id();
    let mut private = zeroize::Zeroizing::new(format!("# algorithm: {alg}\n# key id: {key_id}\n"));
    private.push_str(&key.to_pem()?);
    let public_pem = public.to_pem();
    match out {
        Some(path) => {
            let mut pub_path = path.as_os_str().to_owned();
            pub_path.push(".pub");
            let pub_path = Path::new(&pub_path);
            let mut file = create_new(path, 0o600)?;
            // Both files are created before either is written: a pre-placed `.pub` (a file, or
            // a symlink pointing elsewhere) stops the command and removes the new, empty key.
            let mut pub_file = create_new(pub_path, 0o644).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            })?;
            file.write_all(private.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            pub_file
                .write_all(public_pem.as_bytes())
                .and_then(|()| pub_file.sync_all())
                .with_context(|| format!("writing {}", pub_path.display()))?;
            println!("# key id: {key_id}");
            print!("{public_pem}");
            eprintln!(
                "wrote {alg} private key to {} and public key to {}",
                path.display(),
                pub_path.display()
            );
        }
        None => {
            print!("{}", private.as_str());
            eprintln!("# key id: {key_id}");
            eprint!("{public_pem}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` with `mode`; never replaces an existing file or follows a symlink there.
fn create_new(path: &Path, mode: u32) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key file is never overwritten; remove it or choose another -o)",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `K.pub` is created like `K`: a symlink planted there is not followed (its target keeps
    /// its content), the command fails, and no half-written key pair is left behind.
    #[test]
    fn a_planted_pub_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("k.pub")).unwrap();
        let err = run(SignAlg::Ed25519, Some(&key)).unwrap_err();
        assert!(format!("{err:#}").contains("never overwritten"), "{err:#}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!key.exists(), "the private key of a failed run is removed");
        // An existing regular `.pub` is not replaced either.
        std::fs::remove_file(dir.path().join("k.pub")).unwrap();
        std::fs::write(dir.path().join("k.pub"), b"old").unwrap();
        run(SignAlg::Ed25519, Some(&key)).unwrap_err();
        assert_eq!(std::fs::read(dir.path().join("k.pub")).unwrap(), b"old");
        std::fs::remove_file(dir.path().join("k.pub")).unwrap();
        run(SignAlg::Ed25519, Some(&key)).unwrap();
        assert!(
            std::fs::read_to_string(dir.path().join("k.pub"))
                .unwrap()
                .contains("PUBLIC KEY")
        );
    }
}
