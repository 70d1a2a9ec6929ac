//! Arbitrary text through every lockfile parser of `aigis deps` (the first byte picks the
//! format): no panic, bounded memory and time, issues instead of errors.
#![no_main]

use aigis_supply::deps::inputs::{parse_text, InputKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let kind = InputKind::ALL[usize::from(first) % InputKind::ALL.len()];
    let _ = parse_text(kind, "fuzz", &String::from_utf8_lossy(rest));
});
