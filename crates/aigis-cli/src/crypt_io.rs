//! What `aigis encrypt` and `aigis decrypt` share: opening inputs, writing outputs atomically
//! (temp file in the same folder, renamed on success), passphrases, threads and progress.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use aigis_crypto::age::{self, Identity, ScryptIdentity};
use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Sizes the rayon pool (the default is one thread per core, or `RAYON_NUM_THREADS`).
pub fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("configuring the worker threads")?;
    }
    Ok(())
}

/// The input: a file (with a progress bar on a terminal) or stdin for `-`/absent.
pub fn open_input(path: Option<&Path>) -> anyhow::Result<Box<dyn Read>> {
    match path {
        None => Ok(Box::new(io::stdin().lock())),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(io::stdin().lock())),
        Some(p) => {
            let file = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let len = file.metadata().map_or(0, |m| m.len());
            if crate::progress::shown() && len > 16 * 1024 * 1024 {
                let bar = crate::progress::bar(
                    len,
                    "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                );
                Ok(Box::new(bar.wrap_read(file)))
            } else {
                Ok(Box::new(file))
            }
        }
    }
}

/// Where output goes. A file is written to a temporary sibling and renamed into place only when
/// [`Output::commit`] is called, so a failure never leaves partial output at the final path.
pub enum Output {
    /// Standard output (partial output cannot be withdrawn there).
    Stdout(io::StdoutLock<'static>),
    /// A temporary file next to the final path.
    File {
        temp: tempfile::NamedTempFile,
        path: PathBuf,
        mode: u32,
    },
    /// An existing non-regular file (a device such as /dev/null, a FIFO): written directly.
    Device(File),
}

impl Output {
    /// `binary`: refuse to write binary data to a terminal.
    pub fn create(path: Option<&Path>, binary: bool, mode: u32) -> anyhow::Result<Self> {
        match path {
            None => {
                if binary && io::stdout().is_terminal() {
                    bail!("refusing to write binary data to the terminal; use -o FILE or -a");
                }
                Ok(Self::Stdout(io::stdout().lock()))
            }
            Some(p) if p.as_os_str() == "-" => Self::create(None, binary, mode),
            Some(p) if p.metadata().is_ok_and(|m| !m.is_file()) => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?;
                Ok(Self::Device(f))
            }
            Some(p) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let temp = tempfile::Builder::new()
                    .prefix(".aigis-partial-")
                    .tempfile_in(dir)
                    .with_context(|| {
                        format!("cannot create a temporary file in {}", dir.display())
                    })?;
                Ok(Self::File {
                    temp,
                    path: p.to_owned(),
                    mode,
                })
            }
        }
    }

    /// Moves the finished output into place.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut out) => Ok(out.flush()?),
            Self::Device(mut f) => Ok(f.flush()?),
            Self::File { temp, path, mode } => {
                temp.as_file()
                    .sync_all()
                    .and_then(|()| set_mode(temp.path(), mode))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                temp.persist(&path)
                    .map_err(|e| e.error)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(())
            }
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(o) => o.write(buf),
            Self::File { temp, .. } => temp.write(buf),
            Self::Device(f) => f.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout(o) => o.write_all(buf),
            Self::File { temp, .. } => temp.write_all(buf),
            Self::Device(f) => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(o) => o.flush(),
            Self::File { temp, .. } => temp.flush(),
            Self::Device(f) => f.flush(),
        }
    }
}

/// Largest passphrase file read (only its first line counts).
const MAX_PASSPHRASE_FILE: usize = 64 * 1024;

/// Largest certificate (PEM) file read.
pub(crate) const MAX_CERT_FILE: usize = 1024 * 1024;

/// Reads a passphrase: the first line of `file`, or a prompt on the terminal.
pub fn passphrase(
    file: Option<&Path>,
    prompt: &str,
    confirm: bool,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file {
        let bytes = Zeroizing::new(read_bounded(f, MAX_PASSPHRASE_FILE, "passphrase file")?);
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("passphrase file {} is not UTF-8", f.display()))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            bail!(
                "{} holds no passphrase (its first line is empty)",
                f.display()
            );
        }
        return Ok(Zeroizing::new(line.to_owned()));
    }
    let no_tty = "a passphrase is needed and no terminal can be asked; use --passphrase-file FILE";
    let first = Zeroizing::new(rpassword::prompt_password(prompt).context(no_tty)?);
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Confirm passphrase: ").context("reading the passphrase")?,
        );
        if *first != *again {
            bail!("the passphrases do not match");
        }
    }
    if first.is_empty() {
        bail!("empty passphrase");
    }
    Ok(first)
}

/// Reads `path` (`what` in messages), refusing it past `max` bytes without reading more than
/// one byte beyond: untrusted files (bundles, identities) may be huge, growing, or FIFOs. The
/// buffer is sized from the file's length up front, so a secret read into it (and then
/// wrapped in `Zeroizing`) leaves no reallocated copy behind unless the file grows meanwhile.
pub(crate) fn read_bounded(path: &Path, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let cannot = || format!("cannot read {what} {}", path.display());
    let file = File::open(path).with_context(cannot)?;
    let hint = file.metadata().map_or(0, |m| m.len());
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    let capacity = usize::try_from(hint.min(max64))
        .unwrap_or(max)
        .saturating_add(1);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max64.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() > max {
        bail!("{what} {} is larger than {max} bytes", path.display());
    }
    Ok(bytes)
}

/// A bounded file as UTF-8 text (see [`read_bounded`]): recipients, certificates.
pub(crate) fn read_text(path: &Path, max: usize, what: &str) -> anyhow::Result<String> {
    String::from_utf8(read_bounded(path, max, what)?)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// Identity file text; the error path holds no copy of the secret bytes.
pub(crate) fn utf8_secret(bytes: &[u8]) -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(
        std::str::from_utf8(bytes)
            .context("identity file is not UTF-8")?
            .to_owned(),
    ))
}

/// Reads an age identity file; a passphrase-protected one (itself an age file) is unlocked
/// with a prompt or the first line of `passphrase_file`.
pub(crate) fn load_identities(
    path: &Path,
    passphrase_file: Option<&Path>,
    max_work_factor: u8,
) -> anyhow::Result<Vec<Identity>> {
    let bytes = Zeroizing::new(read_bounded(path, age::MAX_KEY_FILE_LEN, "identity file")?);
    let text = if age::is_age_file(&bytes) {
        let prompt = format!("Passphrase for identity file {}: ", path.display());
        let pass = passphrase(passphrase_file, &prompt, false)?;
        let unlock = Identity::Scrypt(ScryptIdentity::new(pass, max_work_factor));
        // Plaintext is shorter than the file: reserved up front, the buffer never moves and
        // leaves no unwiped copy of the keys behind.
        let mut plain = Zeroizing::new(Vec::with_capacity(bytes.len()));
        age::decrypt(&[unlock], &bytes[..], &mut *plain)
            .with_context(|| format!("cannot unlock identity file {}", path.display()))?;
        utf8_secret(&plain)?
    } else {
        utf8_secret(&bytes)?
    };
    Identity::parse_file(&text).with_context(|| format!("in identity file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless input (here `/dev/zero`) is refused after `max + 1` bytes, not read whole.
    #[test]
    fn read_bounded_stops_one_byte_past_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1024, "identity file").unwrap_err();
        assert!(
            err.to_string().contains("is larger than 1024 bytes"),
            "{err:#}"
        );
        let dir = tempfile::tempdir().unwrap();
        let exact = dir.path().join("exact");
        std::fs::write(&exact, [b'x'; 1024]).unwrap();
        assert_eq!(read_bounded(&exact, 1024, "file").unwrap().len(), 1024);
    }

    #[test]
    fn oversized_identity_file_is_refused_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'#'; age::MAX_KEY_FILE_LEN + 1]).unwrap();
        let Err(err) = load_identities(&big, None, 22) else {
            panic!("an oversized identity file was accepted");
        };
        assert!(
            err.to_string()
                .contains(&format!("is larger than {} bytes", age::MAX_KEY_FILE_LEN)),
            "{err:#}"
        );
    }
}
