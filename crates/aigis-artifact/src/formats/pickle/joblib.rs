//! joblib's array layout: what a `NumpyArrayWrapper`'s attributes say about the bytes that
//! follow its BUILD in the stream (joblib's `NumpyArrayWrapper.read_array`/`read_mmap`):
//!
//! - object arrays (`dtype.hasobject`) are a separate pickle, read by a fresh unpickler;
//! - otherwise, when `numpy_array_alignment_bytes` is not None (joblib ≥ 1.2 sets 16 whenever
//!   the file can `tell()`, compressed dumps included), one padding-length byte and that many
//!   padding bytes come first; `allow_mmap` only chooses between two readers of the same layout;
//! - then `prod(shape) × itemsize` raw bytes.

use super::value::{MAX_TRACKED_ITEMS, V};

/// Where an array's bytes end, from the wrapper's attributes.
#[derive(Debug)]
pub struct ArrayLayout {
    /// Object arrays are a separate pickle instead of raw bytes.
    pub object: bool,
    /// A padding-length byte and padding precede the data.
    pub padded: bool,
    /// Raw data bytes (for non-object arrays).
    pub nbytes: u64,
}

/// The attributes BUILD gives an object without `__setstate__`: the items of a state dict,
/// then those of the slot-state dict of a `(state, slotstate)` pair. `None` when the state
/// has another shape or a dict was too long to be kept whole.
pub fn build_attrs(state: &V) -> Option<Vec<(V, V)>> {
    let items = |v: &V| match v {
        V::None => Some(Vec::new()),
        V::Dict(d) => {
            let d = d.borrow();
            (d.len() < MAX_TRACKED_ITEMS).then(|| d.clone())
        }
        _ => None,
    };
    match state {
        V::Tuple(pair) if pair.len() == 2 => {
            let mut out = items(pair.first()?)?;
            out.extend(items(pair.get(1)?)?);
            Some(out)
        }
        other => items(other),
    }
}

/// The value of attribute `name` (the last assignment wins, as in the instance dict).
fn attr<'a>(attrs: &'a [(V, V)], name: &str) -> Option<&'a V> {
    attrs
        .iter()
        .rev()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

impl ArrayLayout {
    /// Reads the layout from the wrapper's attributes; the error says which one is unknown.
    pub fn from_attrs(attrs: &[(V, V)]) -> Result<Self, &'static str> {
        let Some(V::Called(d)) = attr(attrs, "dtype") else {
            return Err("its dtype is not a numpy.dtype(...) value");
        };
        let code = d
            .args
            .item(0)
            .and_then(V::as_str)
            .ok_or("its dtype code is not a string")?
            .to_owned();
        // numpy.dtype.__reduce__ state: (version, byteorder, subdescr, names, fields, elsize,
        // alignment, flags[, metadata]). Flag 0x01 (NPY_ITEM_REFCOUNT) is `hasobject`: a
        // structured dtype with an object field has a `V` code.
        let state = d.state.borrow().clone();
        let (elsize, flags) = match &state {
            None => (None, None),
            Some(s @ V::Tuple(_)) => (
                s.item(5).and_then(V::as_int).filter(|&n| n > 0),
                Some(
                    s.item(7)
                        .and_then(V::as_int)
                        .ok_or("its dtype flags are unreadable")?,
                ),
            ),
            Some(_) => return Err("its dtype state is unreadable"),
        };
        let object = match flags {
            Some(f) => f & 1 != 0,
            None => code
                .trim_start_matches(['<', '>', '|', '='])
                .starts_with('O'),
        };
        if object {
            return Ok(Self {
                object,
                padded: false,
                nbytes: 0,
            });
        }
        let padded = match attr(attrs, "numpy_array_alignment_bytes") {
            None | Some(V::None) => false,
            // A global or a call's result may be None: where the data starts is unknown.
            Some(V::Global(_) | V::Called(_) | V::Unresolved) => {
                return Err("its numpy_array_alignment_bytes cannot be resolved");
            }
            Some(_) => true,
        };
        let itemsize = match elsize {
            Some(n) => u64::try_from(n).map_err(|_| "its item size is negative")?,
            None => itemsize(&code).ok_or("its dtype code has no known item size")?,
        };
        let Some(V::Tuple(dims)) = attr(attrs, "shape") else {
            return Err("its shape is not a tuple");
        };
        let mut count: u64 = 1;
        for d in dims.iter() {
            let n = d.as_int().ok_or("a dimension is not an integer")?;
            let n = u64::try_from(n).map_err(|_| "a dimension is negative")?;
            count = count.checked_mul(n).ok_or("its size overflows")?;
        }
        Ok(Self {
            object,
            padded,
            nbytes: count.checked_mul(itemsize).ok_or("its size overflows")?,
        })
    }
}

/// Item size from a dtype code such as `f8`, `<i4`, `u1`, `c16`, `b1`, `M8`, `U4`.
fn itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let (kind, digits) = code.split_at_checked(1)?;
    let n: u64 = digits.parse().ok()?;
    match kind {
        "f" | "i" | "u" | "b" | "c" | "M" | "m" | "S" | "V" => Some(n),
        // UCS-4 characters.
        "U" => n.checked_mul(4),
        _ => None,
    }
}
