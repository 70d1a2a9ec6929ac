//! Optional content capture (`content = "encrypted"`): the request and response bodies of a
//! call, each sealed as a plain age file to its tenant's recipients, in a folder beside the
//! log. The log leaf keeps only the keyed digests and a reference to the blobs
//! ([`crate::Event::content`]), so deleting a tenant's identity (or its folder) makes its
//! content unreadable — crypto-shredding — while `aigis audit verify` still passes.
//!
//! Layout: `DIR/TENANT/TIME_MS-RANDOM.request.age` and `….response.age`, where `TENANT` is the
//! tenant name with every byte outside `[A-Za-z0-9_.-]` (and a leading `.`) written `%XX`, and
//! the reference recorded in the event is `TENANT/TIME_MS-RANDOM`. The time in the name lets
//! `aigis audit prune` remove old content without trusting file times. Each blob's plaintext
//! is exactly the bytes the digest covers (the request as received, the response as sent), so
//! anyone holding both the content and the ledger key can check it against the log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use aigis_crypto::age::Recipient;

use aigis_crypto::age::{self, EncryptOptions, Identity};

use crate::LedgerError;

/// The recipients entry used for tenants without their own.
pub const DEFAULT_TENANT: &str = "default";
/// The two parts of a captured call.
pub const PARTS: [&str; 2] = ["request", "response"];

/// Where captured content is sealed, and to whom.
pub struct ContentStore {
    dir: PathBuf,
    recipients: BTreeMap<String, Vec<Recipient>>,
}

impl std::fmt::Debug for ContentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStore")
            .field("dir", &self.dir)
            .field("tenants", &self.recipients.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// One call's decrypted content.
#[derive(Debug)]
pub struct Content {
    /// The request body as the gateway received it.
    pub request: Vec<u8>,
    /// The response body as the client got it (for a stream, the events as released).
    pub response: Vec<u8>,
}

fn io_err(path: &Path, e: &dyn std::fmt::Display) -> LedgerError {
    LedgerError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The folder name of `tenant` (injective: `%` never appears unescaped).
pub fn tenant_dir(tenant: &str) -> String {
    let mut out = String::with_capacity(tenant.len());
    for (i, b) in tenant.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// Checks a reference read from the log (`TENANT/TIME-RANDOM`) so it can only name a blob
/// inside the content folder; returns its time.
fn check_reference(reference: &str) -> Result<u64, LedgerError> {
    let bad = || LedgerError::Config(format!("invalid content reference {reference:?}"));
    let (tenant, name) = reference.split_once('/').ok_or_else(bad)?;
    let tenant_ok = !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-%".contains(&b));
    let (time, random) = name.split_once('-').ok_or_else(bad)?;
    let random_ok = random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit());
    if !tenant_ok || !random_ok || time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    time.parse().map_err(|_| bad())
}

/// The blob file of `part` (`request` or `response`) of `reference` under `dir`.
pub fn blob_path(dir: &Path, reference: &str, part: &str) -> Result<PathBuf, LedgerError> {
    check_reference(reference)?;
    Ok(dir.join(format!("{reference}.{part}.age")))
}

impl ContentStore {
    /// Content sealed under `dir`; `recipients` maps tenant names (and [`DEFAULT_TENANT`]) to
    /// their age recipients.
    pub fn new(dir: PathBuf, recipients: BTreeMap<String, Vec<Recipient>>) -> Self {
        Self { dir, recipients }
    }

    /// The content folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recipients content of `tenant` is sealed to: its own, else the default entry's;
    /// `None` when neither exists (the caller must then refuse: never plaintext).
    pub fn recipients_for(&self, tenant: &str) -> Option<&[Recipient]> {
        self.recipients
            .get(tenant)
            .or_else(|| self.recipients.get(DEFAULT_TENANT))
            .map(Vec::as_slice)
            .filter(|r| !r.is_empty())
    }

    /// Seals `request` and `response` for `tenant` (each a plain age file, fsynced) and
    /// returns the reference to record in the event.
    pub fn seal(
        &self,
        tenant: &str,
        time_ms: u64,
        request: &[u8],
        response: &[u8],
    ) -> Result<String, LedgerError> {
        let recipients = self.recipients_for(tenant).ok_or_else(|| {
            LedgerError::Config(format!(
                "no content recipients for tenant {tenant:?} (and no `default`): content is never stored unencrypted"
            ))
        })?;
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| LedgerError::Random)?;
        let reference = format!("{}/{time_ms}-{}", tenant_dir(tenant), hex::encode(random));
        let folder = self.dir.join(tenant_dir(tenant));
        std::fs::create_dir_all(&folder).map_err(|e| io_err(&folder, &e))?;
        let options = EncryptOptions {
            armor: false,
            allow_mixed_pq: true,
        };
        for (part, body) in PARTS.into_iter().zip([request, response]) {
            let path = blob_path(&self.dir, &reference, part)?;
            let mut sealed = Vec::with_capacity(body.len() + 512);
            age::encrypt(recipients, &options, body, &mut sealed).map_err(|e| {
                LedgerError::Config(format!("sealing content for tenant {tenant:?}: {e}"))
            })?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| io_err(&path, &e))?;
            file.write_all(&sealed)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_err(&path, &e))?;
        }
        Ok(reference)
    }
}

/// Decrypts the content `reference` names under `dir` with `identities`.
pub fn open(dir: &Path, reference: &str, identities: &[Identity]) -> Result<Content, LedgerError> {
    let mut parts = PARTS.into_iter().map(|part| {
        let path = blob_path(dir, reference, part)?;
        let file = std::fs::File::open(&path).map_err(|e| io_err(&path, &e))?;
        let mut plain = Vec::new();
        age::decrypt(identities, std::io::BufReader::new(file), &mut plain)
            .map_err(|e| io_err(&path, &e))?;
        Ok::<_, LedgerError>(plain)
    });
    let request = parts.next().unwrap_or_else(|| Ok(Vec::new()))?;
    let response = parts.next().unwrap_or_else(|| Ok(Vec::new()))?;
    Ok(Content { request, response })
}

/// Removes content blobs older than `before_ms` under `dir` (never log entries); returns how
/// many blobs were removed. Files that are not content blobs are left alone.
pub fn prune(dir: &Path, before_ms: u64) -> Result<u64, LedgerError> {
    let mut removed = 0;
    let tenants = match std::fs::read_dir(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(dir, &e)),
    };
    for tenant in tenants {
        let tenant = tenant.map_err(|e| io_err(dir, &e))?;
        if !tenant.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let folder = tenant.path();
        for blob in std::fs::read_dir(&folder).map_err(|e| io_err(&folder, &e))? {
            let blob = blob.map_err(|e| io_err(&folder, &e))?;
            let name = blob.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = PARTS
                .iter()
                .find_map(|p| name.strip_suffix(&format!(".{p}.age")))
            else {
                continue;
            };
            let reference = format!("{}/{stem}", tenant.file_name().to_string_lossy());
            if check_reference(&reference).is_ok_and(|t| t < before_ms) {
                let path = blob.path();
                std::fs::remove_file(&path).map_err(|e| io_err(&path, &e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_dirs_are_injective_and_safe() {
        assert_eq!(tenant_dir("team-a"), "team-a");
        assert_eq!(tenant_dir("key:abc"), "key%3Aabc");
        assert_eq!(tenant_dir("../x"), "%2E.%2Fx");
        assert_eq!(tenant_dir(""), "%00");
        assert_ne!(tenant_dir("a%3A"), tenant_dir("a:"));
    }

    #[test]
    fn references_cannot_leave_the_folder() {
        let r = format!("team-a/12-{}", "ab".repeat(16));
        assert_eq!(check_reference(&r).ok(), Some(12));
        for bad in [
            "../x/12-00",
            "team-a/../12-00",
            &format!("./12-{}", "ab".repeat(16)),
            &format!("a/b/12-{}", "ab".repeat(16)),
            &format!("team-a/x-{}", "ab".repeat(16)),
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }
}
