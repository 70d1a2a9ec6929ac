//! Just enough ZIP to read an OSV export (`PyPI.zip`, `crates.io.zip`, `all.zip`): the central
//! directory, then each member through its local header, stored or deflated, CRC-checked.
//!
//! Every size and offset comes from the file, so every one is checked: members larger than
//! [`MAX_MEMBER_BYTES`] (compressed or not) are refused before anything is allocated, the
//! inflater reads at most one byte more than the declared size, and the member count is capped
//! at [`MAX_MEMBERS`]. ZIP64 (archives over 4 GiB or with more than 65,535 members, as large
//! OSV exports are) is read: the ZIP64 end record and the ZIP64 extra field of each member.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Largest member read (compressed or uncompressed), the same as the record limit.
pub const MAX_MEMBER_BYTES: u64 = super::osv::MAX_RECORD_BYTES as u64;
/// Most members accepted in one archive.
pub const MAX_MEMBERS: usize = 5_000_000;

const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const EOCD64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const EOCD64_SIGNATURE: u32 = 0x0606_4b50;

/// One member of the central directory.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member's path inside the archive.
    pub name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// An open archive.
pub struct Archive {
    file: File,
    members: Vec<Member>,
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn u16_at(b: &[u8], at: usize) -> io::Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| bad(format!("zip structure truncated at byte {at}")))
}

fn u64_at(b: &[u8], at: usize) -> io::Result<u64> {
    Ok(u64::from(u32_at(b, at)?) | (u64::from(u32_at(b, at + 4)?) << 32))
}

fn u32_at(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad(format!("zip structure truncated at byte {at}")))
}

impl Archive {
    /// Opens `path` and reads its central directory.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let tail_len = len.min(65_535 + 22);
        file.seek(SeekFrom::Start(len - tail_len))?;
        let mut tail = vec![0u8; usize::try_from(tail_len).map_err(|_| bad("zip too large"))?];
        file.read_exact(&mut tail)?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(&tail, i).is_ok_and(|s| s == EOCD_SIGNATURE))
            .ok_or_else(|| bad("no end-of-central-directory record: not a zip archive"))?;
        let mut count = u64::from(u16_at(&tail, eocd + 10)?);
        let mut cd_size = u64::from(u32_at(&tail, eocd + 12)?);
        let mut cd_offset = u64::from(u32_at(&tail, eocd + 16)?);
        if count == u64::from(u16::MAX)
            || cd_size == u64::from(u32::MAX)
            || cd_offset == u64::from(u32::MAX)
        {
            // ZIP64: the locator sits right before the end record and points at the ZIP64 end
            // record, which holds the real count, size and offset.
            let locator = eocd
                .checked_sub(20)
                .filter(|&at| u32_at(&tail, at).is_ok_and(|s| s == EOCD64_LOCATOR_SIGNATURE))
                .ok_or_else(|| bad("ZIP64 values without a ZIP64 end-of-directory locator"))?;
            let at = u64_at(&tail, locator + 8)?;
            let mut record = [0u8; 56];
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut record)?;
            if u32_at(&record, 0)? != EOCD64_SIGNATURE {
                return Err(bad("bad ZIP64 end-of-central-directory signature"));
            }
            count = u64_at(&record, 32)?;
            cd_size = u64_at(&record, 40)?;
            cd_offset = u64_at(&record, 48)?;
        }
        if cd_offset.checked_add(cd_size).is_none_or(|end| end > len) {
            return Err(bad("central directory lies beyond the end of the file"));
        }
        let count = usize::try_from(count).map_err(|_| bad("member count too large"))?;
        if count > MAX_MEMBERS {
            return Err(bad(format!("more than {MAX_MEMBERS} members")));
        }
        file.seek(SeekFrom::Start(cd_offset))?;
        let mut cd = vec![0u8; usize::try_from(cd_size).map_err(|_| bad("directory too large"))?];
        file.read_exact(&mut cd)?;
        let members = parse_central(&cd, count)?;
        Ok(Self { file, members })
    }

    /// The members, in central-directory order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Reads the compressed bytes of member `index` (bounded by [`MAX_MEMBER_BYTES`]).
    pub fn read_raw(&mut self, index: usize) -> io::Result<RawMember> {
        let m = self
            .members
            .get(index)
            .ok_or_else(|| bad("no such member"))?
            .clone();
        if m.compressed > MAX_MEMBER_BYTES || m.uncompressed > MAX_MEMBER_BYTES {
            return Err(bad(format!(
                "{}: member larger than the {MAX_MEMBER_BYTES}-byte limit",
                m.name
            )));
        }
        self.file.seek(SeekFrom::Start(m.local_offset))?;
        let mut header = [0u8; 30];
        self.file.read_exact(&mut header)?;
        if u32_at(&header, 0)? != LOCAL_SIGNATURE {
            return Err(bad(format!("{}: bad local header signature", m.name)));
        }
        let skip = u64::from(u16_at(&header, 26)?) + u64::from(u16_at(&header, 28)?);
        self.file
            .seek(SeekFrom::Current(i64::try_from(skip).unwrap_or(0)))?;
        let size = usize::try_from(m.compressed).map_err(|_| bad("member too large"))?;
        let mut data = vec![0u8; size];
        self.file.read_exact(&mut data)?;
        Ok(RawMember { member: m, data })
    }
}

/// A member's compressed bytes, ready to inflate on any thread.
pub struct RawMember {
    /// The member.
    pub member: Member,
    data: Vec<u8>,
}

impl RawMember {
    /// Inflates (or copies) the member and checks its CRC-32.
    pub fn inflate(&self) -> io::Result<Vec<u8>> {
        let m = &self.member;
        let out = match m.method {
            0 => self.data.clone(),
            8 => {
                let mut out = Vec::with_capacity(usize::try_from(m.uncompressed).unwrap_or(0));
                flate2::read::DeflateDecoder::new(self.data.as_slice())
                    .take(m.uncompressed + 1)
                    .read_to_end(&mut out)?;
                out
            }
            other => {
                return Err(bad(format!(
                    "{}: compression method {other} is not supported (only stored and deflate)",
                    m.name
                )));
            }
        };
        if out.len() as u64 != m.uncompressed {
            return Err(bad(format!(
                "{}: inflated to {} bytes, the directory says {}",
                m.name,
                out.len(),
                m.uncompressed
            )));
        }
        if crc32fast::hash(&out) != m.crc {
            return Err(bad(format!("{}: CRC-32 mismatch", m.name)));
        }
        Ok(out)
    }
}

fn parse_central(cd: &[u8], count: usize) -> io::Result<Vec<Member>> {
    let mut members = Vec::with_capacity(count.min(MAX_MEMBERS));
    let mut at = 0usize;
    for _ in 0..count {
        if members.len() >= MAX_MEMBERS {
            return Err(bad(format!("more than {MAX_MEMBERS} members")));
        }
        if u32_at(cd, at)? != CENTRAL_SIGNATURE {
            return Err(bad(format!(
                "bad central directory signature at offset {at}"
            )));
        }
        let name_len = usize::from(u16_at(cd, at + 28)?);
        let extra_len = usize::from(u16_at(cd, at + 30)?);
        let comment_len = usize::from(u16_at(cd, at + 32)?);
        let name_bytes = cd
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("central directory truncated in a member name"))?;
        let extra = cd
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(|| bad("central directory truncated in an extra field"))?;
        let mut member = Member {
            name: String::from_utf8_lossy(name_bytes).into_owned(),
            method: u16_at(cd, at + 10)?,
            crc: u32_at(cd, at + 16)?,
            compressed: u64::from(u32_at(cd, at + 20)?),
            uncompressed: u64::from(u32_at(cd, at + 24)?),
            local_offset: u64::from(u32_at(cd, at + 42)?),
        };
        apply_zip64_extra(&mut member, extra)?;
        members.push(member);
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(members)
}

/// Replaces the 32-bit fields saturated at `0xFFFFFFFF` with the ZIP64 extra field's values
/// (which appear in the order uncompressed, compressed, local offset, each only when needed).
fn apply_zip64_extra(member: &mut Member, extra: &[u8]) -> io::Result<()> {
    const SATURATED: u64 = u32::MAX as u64;
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at)?;
        let size = usize::from(u16_at(extra, at + 2)?);
        if id == 1 {
            let mut field = at + 4;
            for value in [
                &mut member.uncompressed,
                &mut member.compressed,
                &mut member.local_offset,
            ] {
                if *value == SATURATED {
                    *value = u64_at(extra, field)?;
                    field += 8;
                }
            }
            return Ok(());
        }
        at += 4 + size;
    }
    Ok(())
}
