//! The ledger key file: the log's origin, its Ed25519 checkpoint key, its ML-DSA-65
//! cosigning key and the content-digest key, in one PEM file (mode 0600, never overwritten).
//!
//! ```text
//! # aigis ledger key: keep secret. Public verifier keys: `aigis audit init --print`
//! # origin: aigis.example/ledger
//! -----BEGIN PRIVATE KEY-----        (Ed25519, PKCS#8)
//! -----BEGIN PRIVATE KEY-----        (ML-DSA-65, PKCS#8 seed form)
//! -----BEGIN AIGIS LEDGER CONTENT KEY-----   (32 random bytes)
//! ```

use std::io::Write as _;
use std::path::Path;

use aigis_crypto::sign::pkcs8::{pem_decode, pem_encode};
use aigis_crypto::sign::{SignAlg, SigningKey};
use zeroize::Zeroizing;

use crate::LedgerError;
use crate::event::ContentKey;
use crate::note::{NoteAlg, NoteSigner, NoteVerifier};

const PEM_CONTENT: &str = "AIGIS LEDGER CONTENT KEY";
const END_PRIVATE: &str = "-----END PRIVATE KEY-----";
/// Largest key file read.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The ledger's secret keys.
#[derive(Debug)]
pub struct LedgerKeys {
    origin: String,
    log: NoteSigner,
    cosigner: NoteSigner,
    content: ContentKey,
}

/// The public half: what an auditor needs.
#[derive(Debug, Clone)]
pub struct LedgerVerifiers {
    /// Origin line of the log's checkpoints.
    pub origin: String,
    /// Ed25519 checkpoint key.
    pub log: NoteVerifier,
    /// ML-DSA-65 cosigning key, when known.
    pub cosigner: Option<NoteVerifier>,
}

impl LedgerVerifiers {
    /// Parses verifier keys, one per line (`#` comments and blank lines ignored): exactly one
    /// Ed25519 key, at most one ML-DSA-65 cosignature key. The origin is the Ed25519 key's name.
    pub fn parse(text: &str) -> Result<Self, LedgerError> {
        let mut log = None;
        let mut cosigner = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let v = NoteVerifier::parse(line).map_err(|e| LedgerError::Key {
                what: format!("verifier key on line {}: {e}", i + 1),
            })?;
            let slot = match v.alg() {
                NoteAlg::Ed25519 => &mut log,
                NoteAlg::MlDsa65Cosig => &mut cosigner,
            };
            if slot.replace(v).is_some() {
                return Err(LedgerError::Key {
                    what: format!("line {}: a second key of the same type", i + 1),
                });
            }
        }
        let log: NoteVerifier = log.ok_or_else(|| LedgerError::Key {
            what: "no Ed25519 verifier key (the line printed by `aigis audit init`)".into(),
        })?;
        Ok(Self {
            origin: log.name().to_owned(),
            log,
            cosigner,
        })
    }

    /// The keys as text, one vkey per line.
    pub fn to_text(&self) -> String {
        let mut s = self.log.to_vkey();
        s.push('\n');
        if let Some(c) = &self.cosigner {
            s.push_str(&c.to_vkey());
            s.push('\n');
        }
        s
    }
}

impl LedgerKeys {
    /// Fresh keys for a log named `origin` (a schema-less URL such as `aigis.example/ledger`).
    pub fn generate(origin: &str) -> Result<Self, LedgerError> {
        let bad = |e: String| LedgerError::Key { what: e };
        let ed = SigningKey::generate(SignAlg::Ed25519).map_err(|e| bad(e.to_string()))?;
        let ml = SigningKey::generate(SignAlg::MlDsa65).map_err(|e| bad(e.to_string()))?;
        Self::assemble(origin, ed, ml, ContentKey::generate()?)
    }

    fn assemble(
        origin: &str,
        ed: SigningKey,
        ml: SigningKey,
        content: ContentKey,
    ) -> Result<Self, LedgerError> {
        if origin.len() > 255 || origin.contains('\n') {
            return Err(LedgerError::Key {
                what: format!("origin {origin:?} must be one line of at most 255 bytes"),
            });
        }
        let bad = |e: crate::note::NoteError| LedgerError::Key {
            what: format!("origin {origin:?}: {e}"),
        };
        Ok(Self {
            origin: origin.to_owned(),
            log: NoteSigner::new(origin, NoteAlg::Ed25519, ed).map_err(bad)?,
            cosigner: NoteSigner::new(origin, NoteAlg::MlDsa65Cosig, ml).map_err(bad)?,
            content,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The Ed25519 checkpoint signer.
    pub fn log(&self) -> &NoteSigner {
        &self.log
    }

    /// The ML-DSA-65 cosigner.
    pub fn cosigner(&self) -> &NoteSigner {
        &self.cosigner
    }

    /// The content-digest key.
    pub fn content(&self) -> &ContentKey {
        &self.content
    }

    /// The public verifier keys.
    pub fn verifiers(&self) -> LedgerVerifiers {
        LedgerVerifiers {
            origin: self.origin.clone(),
            log: self.log.verifier().clone(),
            cosigner: Some(self.cosigner.verifier().clone()),
        }
    }

    /// The key file text (secret; zeroized on drop).
    pub fn to_file_text(&self) -> Result<Zeroizing<String>, LedgerError> {
        let bad = |e: aigis_crypto::sign::SignError| LedgerError::Key {
            what: e.to_string(),
        };
        let mut s = Zeroizing::new(format!(
            "# aigis ledger key: keep secret (checkpoint signing and content digests)\n# origin: {}\n",
            self.origin
        ));
        s.push_str(&self.log.key().to_pem().map_err(bad)?);
        s.push_str(&self.cosigner.key().to_pem().map_err(bad)?);
        s.push_str(&Zeroizing::new(pem_encode(
            PEM_CONTENT,
            self.content.bytes(),
        )));
        Ok(s)
    }

    /// Parses a key file.
    pub fn from_file_text(text: &str) -> Result<Self, LedgerError> {
        let bad = |what: String| LedgerError::Key { what };
        let origin = text
            .lines()
            .find_map(|l| l.strip_prefix("# origin: "))
            .ok_or_else(|| bad("no `# origin:` line".into()))?
            .trim();
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(end) = rest.find(END_PRIVATE) {
            let block = &rest[..end + END_PRIVATE.len()];
            keys.push(SigningKey::from_pem(block).map_err(|e| bad(e.to_string()))?);
            rest = &rest[end + END_PRIVATE.len()..];
        }
        let ed = keys.iter().position(|k| k.alg() == SignAlg::Ed25519);
        let ml = keys.iter().position(|k| k.alg() == SignAlg::MlDsa65);
        let (Some(ed), Some(ml)) = (ed, ml) else {
            return Err(bad(
                "the key file needs one Ed25519 and one ML-DSA-65 private key".into(),
            ));
        };
        if keys.len() != 2 {
            return Err(bad(format!(
                "expected 2 private keys, found {}",
                keys.len()
            )));
        }
        let content =
            Zeroizing::new(pem_decode(text, PEM_CONTENT).map_err(|e| bad(e.to_string()))?);
        let content: [u8; 32] = content
            .as_slice()
            .try_into()
            .map_err(|_| bad("the content key must be 32 bytes".into()))?;
        let (ml_key, ed_key) = if ed < ml {
            let ml_key = keys.remove(ml);
            (ml_key, keys.remove(ed))
        } else {
            let ed_key = keys.remove(ed);
            (keys.remove(ml), ed_key)
        };
        Self::assemble(origin, ed_key, ml_key, ContentKey::new(content))
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, LedgerError> {
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_KEY_FILE {
            return Err(LedgerError::Key {
                what: format!(
                    "{} is {len} bytes; a key file is at most 64 KiB",
                    path.display()
                ),
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::from_file_text(&text).map_err(|e| match e {
            LedgerError::Key { what } => LedgerError::Key {
                what: format!("{}: {what}", path.display()),
            },
            other => other,
        })
    }

    /// Generates keys for `origin`, writes the key file (0600, never overwriting) and the
    /// public verifier keys beside it as `PATH.pub`.
    pub fn create_files(path: &Path, origin: &str) -> Result<Self, LedgerError> {
        let keys = Self::generate(origin)?;
        keys.write_new(path)?;
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        std::fs::write(&pub_path, keys.verifiers().to_text()).map_err(|e| LedgerError::Io {
            path: Path::new(&pub_path).display().to_string(),
            message: e.to_string(),
        })?;
        Ok(keys)
    }

    /// Writes the key file with mode 0600; refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), LedgerError> {
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(self.to_file_text()?.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }
}
