//! One module per model file format. Each exposes `sniff(prefix: &[u8]) -> bool` (does this
//! look like the format, by content) and `scan(input: &mut Input) -> Outcome`.

mod bounded;
mod chat_template;
mod json_entries;

pub mod safetensors;
