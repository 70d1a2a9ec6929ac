//! Arbitrary bytes as an HDF5 file's superblock, root object header and attributes: no panic, bounded memory and time.
#![no_main]

use aigis_artifact::formats::hdf5;
use aigis_artifact::{Input, Origin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut source = std::io::Cursor::new(data);
    let _ = hdf5::scan(&mut Input { source: &mut source, len: data.len() as u64, origin: Origin::file("model.h5") });
});
