//! Format detection by content: magic bytes and structure, never the file extension alone.
//! A member or file name is only a secondary hint for formats without a magic number
//! (ONNX and SavedModel protobufs).

/// What an input's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ZIP archive (PyTorch zip checkpoints, .npz, .keras, plain zips).
    Zip,
    /// POSIX/GNU tar archive (legacy PyTorch tar checkpoints).
    Tar,
    /// gzip wrapper.
    Gzip,
    /// zlib stream (joblib's zlib compressor).
    Zlib,
    /// bzip2 wrapper.
    Bzip2,
    /// xz wrapper.
    Xz,
    /// Legacy `.lzma` (LZMA-alone) wrapper (joblib's lzma compressor).
    Lzma,
    /// Zstandard wrapper.
    Zstd,
    /// 7-Zip archive.
    SevenZ,
    /// An age-encrypted file (binary or armored): its plaintext needs an identity.
    Age,
    /// NumPy `.npy` array.
    Npy,
    /// Protocol 2–5 pickle.
    Pickle,
    /// safetensors.
    Safetensors,
    /// GGUF.
    Gguf,
    /// HDF5 (Keras .h5).
    Hdf5,
    /// ONNX protobuf (name hint `.onnx` plus protobuf structure).
    Onnx,
    /// TensorFlow SavedModel protobuf (`saved_model.pb`).
    SavedModel,
    /// Nothing recognised: tried as a protocol 0/1 pickle.
    Unknown,
}

impl Kind {
    /// A short lowercase name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Zip => "zip",
            Kind::Tar => "tar",
            Kind::Gzip => "gzip",
            Kind::Zlib => "zlib",
            Kind::Bzip2 => "bzip2",
            Kind::Xz => "xz",
            Kind::Lzma => "lzma",
            Kind::Zstd => "zstd",
            Kind::SevenZ => "7z",
            Kind::Age => "age",
            Kind::Npy => "npy",
            Kind::Pickle => "pickle",
            Kind::Safetensors => "safetensors",
            Kind::Gguf => "gguf",
            Kind::Hdf5 => "hdf5",
            Kind::Onnx => "onnx",
            Kind::SavedModel => "savedmodel",
            Kind::Unknown => "unknown",
        }
    }
}

/// Recognises `prefix` (the first [`crate::reader::SNIFF_BYTES`] bytes); `name` is the file or
/// member name, used only for magic-less protobuf formats.
pub fn detect(prefix: &[u8], name: &str) -> Kind {
    let p = prefix;
    if p.starts_with(b"PK\x03\x04") || p.starts_with(b"PK\x05\x06") {
        return Kind::Zip;
    }
    if p.starts_with(b"\x1f\x8b") {
        return Kind::Gzip;
    }
    if p.starts_with(b"BZh") && p.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
        return Kind::Bzip2;
    }
    if p.starts_with(b"\xfd7zXZ\x00") {
        return Kind::Xz;
    }
    if p.starts_with(b"\x28\xb5\x2f\xfd") {
        return Kind::Zstd;
    }
    if p.starts_with(b"7z\xbc\xaf\x27\x1c") {
        return Kind::SevenZ;
    }
    if p.starts_with(b"age-encryption.org/v1\n")
        || p.trim_ascii_start()
            .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Kind::Age;
    }
    if p.starts_with(b"\x93NUMPY") {
        return Kind::Npy;
    }
    if p.starts_with(b"GGUF") {
        return Kind::Gguf;
    }
    if p.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Kind::Hdf5;
    }
    if is_tar(p) {
        return Kind::Tar;
    }
    if crate::formats::pickle::sniff(p) {
        return Kind::Pickle;
    }
    if is_safetensors(p) {
        return Kind::Safetensors;
    }
    if is_zlib(p) {
        return Kind::Zlib;
    }
    if is_lzma_alone(p) {
        return Kind::Lzma;
    }
    let base = name.rsplit(['/', '\\', '!']).next().unwrap_or(name);
    if (base == "saved_model.pb") && is_protobuf(p) {
        return Kind::SavedModel;
    }
    if base.to_ascii_lowercase().ends_with(".onnx") && is_protobuf(p) {
        return Kind::Onnx;
    }
    Kind::Unknown
}

/// A ustar header (magic at 257) or a v7 header whose checksum field matches.
fn is_tar(p: &[u8]) -> bool {
    let Some(header) = p.get(..512) else {
        return false;
    };
    if header.get(257..262) == Some(b"ustar") {
        return true;
    }
    crate::container::tar::checksum_ok(header)
}

/// 8-byte little-endian header length, then a JSON object.
fn is_safetensors(p: &[u8]) -> bool {
    let Some(len) = p.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return false;
    };
    let len = u64::from_le_bytes(len);
    (2..(100 << 20)).contains(&len) && p.get(8) == Some(&b'{')
}

/// RFC 1950 header: deflate with a valid check value.
fn is_zlib(p: &[u8]) -> bool {
    match (p.first(), p.get(1)) {
        (Some(&cmf), Some(&flg)) => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
        }
        _ => false,
    }
}

/// LZMA-alone header: properties byte 0x5d (the default lc/lp/pb), a power-of-two dictionary
/// and an unknown or plausible size.
fn is_lzma_alone(p: &[u8]) -> bool {
    p.first() == Some(&0x5d)
        && p.get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .is_some_and(|d| u32::from_le_bytes(d).is_power_of_two())
        && p.len() >= 13
}

/// Starts with a protobuf field key of wire type 0 or 2 for a small field number.
fn is_protobuf(p: &[u8]) -> bool {
    p.first()
        .is_some_and(|&k| matches!(k & 0x07, 0 | 2) && (1..=20).contains(&(k >> 3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_wins_over_extension() {
        assert_eq!(detect(b"PK\x03\x04rest", "x.txt"), Kind::Zip);
        assert_eq!(detect(b"\x80\x04\x95", "weights.safetensors"), Kind::Pickle);
        assert_eq!(
            detect(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", "x.bin"),
            Kind::Safetensors
        );
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n", "model.pt"), Kind::Unknown);
        assert_eq!(detect(b"x\x9c\x01\x02", "m.joblib"), Kind::Zlib);
        assert_eq!(detect(b"\x08\x07\x12\x04", "model.onnx"), Kind::Onnx);
        assert_eq!(detect(b"\x08\x07\x12\x04", "model.bin"), Kind::Unknown);
    }
}
