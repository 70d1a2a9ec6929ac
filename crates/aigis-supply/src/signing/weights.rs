//! What a weights file says about itself: tensor dtypes and parameter counts from safetensors
//! and GGUF headers (only the header is read, bounded), and GGUF's `general.*` metadata.
//! Format detection uses aigis-artifact's sniffers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use aigis_artifact::formats::{gguf, safetensors};

/// Most tensors read from one header.
pub const MAX_TENSORS: u64 = 1_000_000;
/// Most GGUF metadata entries read.
pub const MAX_GGUF_KV: u64 = 100_000;
/// Longest GGUF string read.
pub const MAX_GGUF_STRING: u64 = 64 * 1024 * 1024;
/// Most GGUF array elements skipped in one array.
pub const MAX_GGUF_ARRAY: u64 = 100_000_000;

/// Tensor statistics of one weights file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightsInfo {
    /// `safetensors` or `gguf`.
    pub format: &'static str,
    /// Number of tensors.
    pub tensors: u64,
    /// Sum over tensors of the product of their shapes.
    pub parameters: u64,
    /// Parameters per dtype.
    pub dtypes: BTreeMap<String, u64>,
    /// GGUF `general.*` string metadata (architecture, name, license, …).
    pub metadata: BTreeMap<String, String>,
}

/// Reads the tensor statistics of `path` if it is a safetensors or GGUF file; `Ok(None)` for
/// other files; `Err` with a reason for a header that cannot be read.
pub fn inspect(path: &Path) -> Result<Option<WeightsInfo>, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut prefix = [0u8; 16];
    let n = read_up_to(&mut file, &mut prefix).map_err(|e| e.to_string())?;
    let prefix = prefix.get(..n).unwrap_or_default();
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    if safetensors::sniff(prefix) {
        return read_safetensors(&mut file).map(Some);
    }
    if gguf::sniff(prefix) {
        return read_gguf(BufReader::new(file)).map(Some);
    }
    Ok(None)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default())? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn read_safetensors(file: &mut File) -> Result<WeightsInfo, String> {
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| e.to_string())?;
    let len = u64::from_le_bytes(len);
    if len > safetensors::MAX_HEADER_LEN {
        return Err(format!(
            "safetensors header of {len} bytes is over the limit"
        ));
    }
    let mut header = vec![0u8; usize::try_from(len).map_err(|_| "header too large")?];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| format!("safetensors header: {e}"))?;
    let mut info = WeightsInfo {
        format: "safetensors",
        ..WeightsInfo::default()
    };
    for (name, t) in &map {
        if name == "__metadata__" {
            if let Some(meta) = t.as_object() {
                for (k, v) in meta {
                    if let Some(s) = v.as_str() {
                        info.metadata.insert(k.clone(), s.to_string());
                    }
                }
            }
            continue;
        }
        let dtype = t.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let count = t
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| format!("tensor {name:?} has no shape"))?
            .iter()
            .try_fold(1u64, |acc, d| d.as_u64().and_then(|d| acc.checked_mul(d)))
            .ok_or_else(|| format!("tensor {name:?} has an invalid or overflowing shape"))?;
        add(&mut info, dtype, count)?;
    }
    Ok(info)
}

fn add(info: &mut WeightsInfo, dtype: &str, count: u64) -> Result<(), String> {
    info.tensors += 1;
    if info.tensors > MAX_TENSORS {
        return Err(format!("more than {MAX_TENSORS} tensors"));
    }
    info.parameters = info
        .parameters
        .checked_add(count)
        .ok_or("parameter count overflows")?;
    *info.dtypes.entry(dtype.to_string()).or_default() += count;
    Ok(())
}

fn rd_u32(r: &mut impl Read) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(u32::from_le_bytes(b))
}

fn rd_u64(r: &mut impl Read) -> Result<u64, String> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(b))
}

fn rd_string(r: &mut impl Read) -> Result<String, String> {
    let len = rd_u64(r)?;
    if len > MAX_GGUF_STRING {
        return Err(format!("GGUF string of {len} bytes is over the limit"));
    }
    let mut buf = Vec::new();
    r.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 != len {
        return Err("GGUF header truncated".into());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn skip(r: &mut impl Read, n: u64) -> Result<(), String> {
    let copied = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(|e| e.to_string())?;
    if copied == n {
        Ok(())
    } else {
        Err("GGUF header truncated".into())
    }
}

/// Reads (or skips) one GGUF value of type `ty`; returns it when it is a string.
fn rd_value(r: &mut impl Read, ty: u32, depth: u8) -> Result<Option<String>, String> {
    let fixed = match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => return rd_string(r).map(Some),
        9 => {
            if depth > 2 {
                return Err("GGUF arrays nested too deeply".into());
            }
            let item = rd_u32(r)?;
            let count = rd_u64(r)?;
            if count > MAX_GGUF_ARRAY {
                return Err(format!("GGUF array of {count} items is over the limit"));
            }
            for _ in 0..count {
                rd_value(r, item, depth + 1)?;
            }
            return Ok(None);
        }
        other => return Err(format!("unknown GGUF value type {other}")),
    };
    skip(r, fixed)?;
    Ok(None)
}

/// GGML tensor type names (ggml.h `enum ggml_type`).
fn ggml_name(t: u32) -> String {
    let name = match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        30 => "BF16",
        _ => return format!("GGML type {t}"),
    };
    name.to_string()
}

fn read_gguf(mut r: impl Read) -> Result<WeightsInfo, String> {
    skip(&mut r, 4)?; // magic, checked by the sniffer
    let version = rd_u32(&mut r)?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (2 and 3 are)"
        ));
    }
    let tensors = rd_u64(&mut r)?;
    let kvs = rd_u64(&mut r)?;
    if tensors > MAX_TENSORS || kvs > MAX_GGUF_KV {
        return Err(format!(
            "GGUF header declares {tensors} tensors and {kvs} entries; over the limits"
        ));
    }
    let mut info = WeightsInfo {
        format: "gguf",
        ..WeightsInfo::default()
    };
    for _ in 0..kvs {
        let key = rd_string(&mut r)?;
        let ty = rd_u32(&mut r)?;
        if let Some(v) = rd_value(&mut r, ty, 0)?
            && key.starts_with("general.")
            && v.len() <= 4096
        {
            info.metadata.insert(key, v);
        }
    }
    for _ in 0..tensors {
        let name = rd_string(&mut r)?;
        let dims = rd_u32(&mut r)?;
        if dims > 8 {
            return Err(format!("tensor {name:?} has {dims} dimensions"));
        }
        let mut count = 1u64;
        for _ in 0..dims {
            count = count
                .checked_mul(rd_u64(&mut r)?)
                .ok_or_else(|| format!("tensor {name:?} shape overflows"))?;
        }
        let ty = rd_u32(&mut r)?;
        skip(&mut r, 8)?; // data offset
        add(&mut info, &ggml_name(ty), count)?;
    }
    Ok(info)
}
