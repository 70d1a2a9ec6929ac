//! Arbitrary bytes as an age header, then (when one parses) the identity, MAC and payload path:
//! no panic, bounded memory.
#![no_main]

use aigis_crypto::age::{self, Header, Identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(&mut &data[..]);
    let id = Identity::parse("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX");
    if let Ok(id) = id {
        let _ = age::decrypt(&[id], data, std::io::sink());
    }
});
