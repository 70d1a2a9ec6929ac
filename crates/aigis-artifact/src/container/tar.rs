//! Tar archives (ustar, GNU long names, pax `path`): every regular member is scanned in place
//! (no copy); links and escaping names are findings. Legacy PyTorch tar checkpoints hold
//! pickles in `pickle`, `tensors` and `storages`.

use aigis_report::{Evidence, Finding, Severity};

use crate::formats::pickle::Options;
use crate::reader::{MAX_ARCHIVE_ENTRIES, MAX_NAME_BYTES, Window, read_at};
use crate::scan::{Ctx, scan_input};
use crate::{Input, Outcome};

/// Whether a 512-byte header's checksum field matches its bytes (v7 tar has no magic).
pub fn checksum_ok(h: &[u8]) -> bool {
    let Some(field) = h.get(148..156) else {
        return false;
    };
    let Some(declared) = octal(field) else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    declared == sum && h.first().is_some_and(|&b| b != 0)
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large sizes.
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field.first()? & 0x7f);
        for &b in field.get(1..)? {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| char::from(b))
        .collect();
    let t = text.trim();
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(t, 8).ok()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

/// Scans a tar archive and every regular member in it.
#[allow(
    clippy::too_many_lines,
    reason = "one pass over the headers reads best in order"
)]
pub fn scan(ctx: &Ctx, input: &mut Input) -> Outcome {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    let len = input.len;
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    let mut count = 0usize;
    let inner = ctx.deeper();
    while pos + 512 <= len {
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            out.not_scanned
                .push(origin.not_scanned(format!("more than {MAX_ARCHIVE_ENTRIES} tar entries")));
            break;
        }
        let h = match read_at(input.source, len, pos, 512, 512) {
            Ok(h) => h,
            Err(e) => {
                out.not_scanned
                    .push(origin.not_scanned(format!("tar header at {pos}: {e}")));
                break;
            }
        };
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(&h) {
            out.not_scanned.push(origin.not_scanned(format!(
                "tar header at offset {pos} has a bad checksum: the rest of the archive cannot be read"
            )));
            break;
        }
        let size = h.get(124..136).and_then(octal).unwrap_or(0);
        let data = pos + 512;
        let Some(end) = data.checked_add(size).filter(|&e| e <= len) else {
            out.not_scanned.push(origin.not_scanned(format!(
                "tar member at offset {pos} declares {size} bytes past the end"
            )));
            break;
        };
        let typeflag = h.get(156).copied().unwrap_or(b'0');
        let mut name = cstr(h.get(0..100).unwrap_or_default());
        let prefix = cstr(h.get(345..500).unwrap_or_default());
        if h.get(257..262) == Some(b"ustar") && !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        if let Some(n) = long_name.take() {
            name = n;
        }
        match typeflag {
            b'L' | b'x' => {
                let body = read_at(input.source, len, data, size, MAX_NAME_BYTES as u64)
                    .unwrap_or_default();
                long_name = if typeflag == b'L' {
                    Some(cstr(&body))
                } else {
                    pax_path(&body)
                };
            }
            b'1' | b'2' => {
                let target = cstr(h.get(157..257).unwrap_or_default());
                out.findings.push(
                    Finding::new(
                        "AIG-TAR-LINK",
                        Severity::Medium,
                        format!("tar member `{name}` is a {} link to `{target}`: extracting it can redirect later reads or writes", if typeflag == b'2' { "symbolic" } else { "hard" }),
                        origin.child(&name).at(pos),
                    )
                    .with_evidence(Evidence::text(format!("{name} -> {target}")))
                    .with_tag("tar"),
                );
            }
            b'0' | 0 | b'7' => {
                if super::escapes(&name) {
                    out.findings.push(
                        Finding::new(
                            "AIG-TAR-PATH",
                            Severity::Medium,
                            format!("tar member name `{name}` escapes the extraction directory"),
                            origin.child(&name).at(pos),
                        )
                        .with_evidence(Evidence::text(name.clone()))
                        .with_tag("tar"),
                    );
                }
                let base = name.rsplit('/').next().unwrap_or(&name).to_owned();
                let opts = Options {
                    known_pickle: matches!(base.as_str(), "pickle" | "tensors" | "storages"),
                    trailing_ok: matches!(base.as_str(), "storages" | "tensors"),
                    ..Options::default()
                };
                let mut win = Window::new(input.source, data, size);
                let mut sub = Input {
                    source: &mut win,
                    len: size,
                    origin: origin.child(&name),
                };
                out.merge(scan_input(&inner, &mut sub, &name, opts));
            }
            _ => {}
        }
        pos = end.div_ceil(512) * 512;
    }
    out
}

fn pax_path(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    text.lines().find_map(|l| {
        let (_, kv) = l.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_owned)
    })
}
