//! Arbitrary bytes through the strict ASCII-armor decoder: no panic, and whatever decodes
//! re-armors to text that decodes to the same bytes.
#![no_main]

use std::io::Read;

use aigis_crypto::age::{ArmorReader, ArmorWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoded = Vec::new();
    if ArmorReader::new(data).read_to_end(&mut decoded).is_ok() {
        let mut w = ArmorWriter::new(Vec::new()).unwrap();
        std::io::Write::write_all(&mut w, &decoded).unwrap();
        let again = w.finish().unwrap();
        let mut back = Vec::new();
        ArmorReader::new(&again[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, decoded);
    }
});
