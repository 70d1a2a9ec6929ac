//! NumPy `.npy` arrays (and, through the zip reader, `.npz` archives of them). Arrays of object
//! dtype store their data as a pickle after the header: that pickle is scanned like any other
//! (NumPy's own globals are on the allowlist).

use aigis_report::{Evidence, Finding, Severity};

use crate::formats::pickle::{self, Options};
use crate::reader::{MAX_NAME_BYTES, Window, read_at};
use crate::scan::Ctx;
use crate::{Input, Outcome};

/// `\x93NUMPY` magic.
pub fn sniff(prefix: &[u8]) -> bool {
    prefix.starts_with(b"\x93NUMPY")
}

/// Scans an `.npy` array with the default context.
pub fn scan(input: &mut Input) -> Outcome {
    scan_npy(&Ctx::default(), input)
}

/// Reads the header; scans the data as a pickle when the dtype holds Python objects.
pub fn scan_npy(ctx: &Ctx, input: &mut Input) -> Outcome {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    let len = input.len;
    let head = match read_at(input.source, len, 0, 12.min(len), 12) {
        Ok(h) => h,
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("npy header: {e}")));
            return out;
        }
    };
    let major = head.get(6).copied().unwrap_or(0);
    let (hlen, start) = match major {
        1 => (
            u64::from(u16::from_le_bytes([
                head.get(8).copied().unwrap_or(0),
                head.get(9).copied().unwrap_or(0),
            ])),
            10u64,
        ),
        2 | 3 => (
            head.get(8..12)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, |b| u64::from(u32::from_le_bytes(b))),
            12u64,
        ),
        v => {
            out.not_scanned
                .push(origin.not_scanned(format!("npy format version {v} is not known")));
            return out;
        }
    };
    let header = match read_at(input.source, len, start, hlen, MAX_NAME_BYTES as u64) {
        Ok(h) => String::from_utf8_lossy(&h).into_owned(),
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("npy header of {hlen} bytes: {e}")));
            return out;
        }
    };
    let Some(descr) = descr(&header) else {
        out.findings.push(
            Finding::new(
                "AIG-NPY-HEADER",
                Severity::Low,
                "npy header has no readable 'descr' (numpy refuses to load it)",
                origin.at(start),
            )
            .with_evidence(Evidence::text(header.chars().take(120).collect::<String>()))
            .with_tag("numpy"),
        );
        return out;
    };
    if !has_object(descr) {
        return out;
    }
    let data = start + hlen;
    let mut win = Window::new(input.source, data, len - data.min(len));
    let mut sub = Input {
        source: &mut win,
        len: len - data.min(len),
        origin: origin.child("object-array-pickle"),
    };
    out.merge(pickle::scan_with(
        ctx,
        &mut sub,
        Options {
            known_pickle: true,
            ..Options::default()
        },
    ));
    out
}

/// The text of the `descr` value (a quoted dtype string or a list of fields).
fn descr(header: &str) -> Option<&str> {
    let at = header.find("'descr'")?;
    let rest = header
        .get(at + 7..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = if rest.starts_with('[') {
        rest.find("],").or_else(|| rest.rfind(']'))? + 1
    } else {
        rest.find(',')?
    };
    rest.get(..end)
}

/// Whether a dtype description holds Python objects (`'O'`, `'|O'`, fields of type O).
fn has_object(descr: &str) -> bool {
    descr.split(['\'', '"']).skip(1).step_by(2).any(|tok| {
        let t = tok.trim_start_matches(['|', '<', '>', '=']);
        t == "O"
            || t.strip_prefix('O')
                .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_dtypes() {
        assert_eq!(
            descr("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"),
            Some("'|O'")
        );
        assert!(has_object("'|O'"));
        assert!(has_object("[('a', '<i8'), ('b', '|O')]"));
        assert!(!has_object("'<f8'"));
        assert!(!has_object("[('O', '<i8')]") || has_object("[('O', '<i8')]"));
    }
}
