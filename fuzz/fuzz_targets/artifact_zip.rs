//! Arbitrary bytes through aigis-artifact's zip reading (and every container and format it
//! recurses into): no panic, bounded memory and time.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| drop(aigis_artifact::scan::scan_bytes(&prefixed(data), "x.zip")));

/// Steers the input towards the zip parser: every format is recognised by content.
fn prefixed(data: &[u8]) -> Vec<u8> {
    let magic: &[u8] = b"PK\x03\x04";
    if data.starts_with(magic) { data.to_vec() } else { [magic, data].concat() }
}
