//! Arbitrary bytes as a chat template (minijinja parse, AST walk, token fallback): no panic, bounded memory and time.
#![no_main]

use aigis_artifact::formats::hf;
use aigis_artifact::{Input, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut source = std::io::Cursor::new(data);
    let _ = hf::scan(&mut Input { source: &mut source, len: data.len() as u64, origin: Origin::file("chat_template.jinja") });
});
