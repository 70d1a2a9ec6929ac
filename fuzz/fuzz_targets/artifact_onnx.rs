//! Arbitrary bytes as an ONNX ModelProto through the streaming protobuf reader: no panic, bounded memory and time.
#![no_main]

use aigis_artifact::formats::onnx;
use aigis_artifact::{Input, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut source = std::io::Cursor::new(data);
    let _ = onnx::scan(&mut Input { source: &mut source, len: data.len() as u64, origin: Origin::file("model.onnx") });
});
