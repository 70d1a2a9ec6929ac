//! Arbitrary bytes as a safetensors header: no panic, bounded memory and time.
#![no_main]

use aigis_artifact::formats::safetensors;
use aigis_artifact::{Input, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut source = std::io::Cursor::new(data);
    let _ = safetensors::scan(&mut Input { source: &mut source, len: data.len() as u64, origin: Origin::file("model.safetensors") });
});
