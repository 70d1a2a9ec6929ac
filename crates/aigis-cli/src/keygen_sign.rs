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
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| {
                    format!(
                        "cannot create {} (an existing key is never overwritten)",
                        path.display()
                    )
                })?;
            file.write_all(private.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            let mut pub_path = path.as_os_str().to_owned();
            pub_path.push(".pub");
            std::fs::write(&pub_path, &public_pem)
                .with_context(|| format!("writing {}", Path::new(&pub_path).display()))?;
            println!("# key id: {key_id}");
            print!("{public_pem}");
            eprintln!(
                "wrote {alg} private key to {} and public key to {}",
                path.display(),
                Path::new(&pub_path).display()
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
