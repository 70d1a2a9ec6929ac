//! Arbitrary bytes as a Keras config.json: no panic, bounded memory and time.
#![no_main]

use aigis_artifact::formats::keras;
use aigis_artifact::{Input, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut source = std::io::Cursor::new(data);
    let _ = keras::scan(&mut Input { source: &mut source, len: data.len() as u64, origin: Origin::file("config.json") });
});
