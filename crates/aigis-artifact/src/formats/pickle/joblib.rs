//! joblib's array layout: the header that a `NumpyArrayWrapper`'s state gives (dtype, shape,
//! whether alignment padding precedes the data) and how many raw bytes follow it.

use super::value::V;

/// Where an array's bytes end, from the wrapper state.
pub struct ArrayLayout {
    /// Object arrays are a separate pickle instead of raw bytes.
    pub object: bool,
    /// A padding-length byte and padding precede the data (joblib ≥ 0.12 with mmap support).
    pub allow_mmap: bool,
    /// Raw data bytes (for non-object arrays).
    pub nbytes: u64,
}

impl ArrayLayout {
    /// Reads the layout from the wrapper's BUILD state dict, `None` when it is not readable.
    pub fn from_state(state: &V) -> Option<Self> {
        let dtype = state.get("dtype")?;
        let V::Called(d) = dtype else { return None };
        let code = d.args.item(0)?.as_str()?.to_owned();
        let elsize = d
            .state
            .borrow()
            .as_ref()
            .and_then(|s| s.item(5).and_then(V::as_int))
            .filter(|&n| n > 0);
        let object = code
            .trim_start_matches(['<', '>', '|', '='])
            .starts_with('O');
        let allow_mmap = state.get("allow_mmap").and_then(|v| v.as_int()) == Some(1);
        if object {
            return Some(Self {
                object,
                allow_mmap: false,
                nbytes: 0,
            });
        }
        let itemsize = match elsize {
            Some(n) => u64::try_from(n).ok()?,
            None => itemsize(&code)?,
        };
        let shape = state.get("shape")?;
        let V::Tuple(dims) = shape else { return None };
        let mut count: u64 = 1;
        for d in dims.iter() {
            count = count.checked_mul(u64::try_from(d.as_int()?).ok()?)?;
        }
        Some(Self {
            object,
            allow_mmap,
            nbytes: count.checked_mul(itemsize)?,
        })
    }
}

/// Item size from a dtype code such as `f8`, `<i4`, `u1`, `c16`, `b1`, `M8`.
fn itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let (kind, digits) = code.split_at_checked(1)?;
    let n: u64 = digits.parse().ok()?;
    match kind {
        "f" | "i" | "U" | "u" | "b" | "c" | "M" | "m" | "S" | "V" | "?" => Some(n),
        _ => None,
    }
}
