//! Self-generated fixtures: round trips at every interesting size (0 bytes, around and at
//! multiples of 64 KiB), any flipped bit refused, any truncation refused, and the seekable
//! reader matching the plaintext at random positions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::assigning_clones,
    clippy::format_collect,
    reason = "test code: a failed step should abort the test"
)]

use std::io::{Cursor, Read, Seek, SeekFrom};

use aigis_crypto::age::{
    self, CHUNK_LEN, EncryptOptions, FailureClass, Identity, Recipient, SeekableReader,
    X25519Identity,
};
use proptest::prelude::*;

fn pair() -> (Identity, Recipient) {
    let id = Identity::X25519(X25519Identity::generate().unwrap());
    let r = id.to_recipient().unwrap().unwrap();
    (id, r)
}

fn plaintext(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn seal(r: &Recipient, data: &[u8], armor: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let options = EncryptOptions {
        armor,
        ..EncryptOptions::default()
    };
    age::encrypt(std::slice::from_ref(r), &options, data, &mut out).unwrap();
    out
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        (1usize..=4).prop_map(|k| k * CHUNK_LEN),
        (1usize..=4, -2i64..=2)
            .prop_map(|(k, d)| (k * CHUNK_LEN).saturating_add_signed(d as isize)),
        0usize..(3 * CHUNK_LEN),
        // More than one parallel batch.
        Just(age::BATCH_CHUNKS * CHUNK_LEN + 17),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_size(len in size_strategy(), seed: u8, armor: bool) {
        let (id, r) = pair();
        let data = plaintext(len, seed);
        let sealed = seal(&r, &data, armor);
        let mut back = Vec::new();
        prop_assert_eq!(age::decrypt(&[id], &sealed[..], &mut back).unwrap(), len as u64);
        prop_assert!(back == data);
    }

    #[test]
    fn any_flipped_bit_fails(len in 0usize..(2 * CHUNK_LEN + 100), at: prop::sample::Index, bit in 0u8..8) {
        let (id, r) = pair();
        let mut sealed = seal(&r, &plaintext(len, 3), false);
        let i = at.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert!(age::decrypt(&[id], &sealed[..], std::io::sink()).is_err());
    }

    #[test]
    fn truncation_is_detected(len in 0usize..(3 * CHUNK_LEN), cut: prop::sample::Index) {
        let (id, r) = pair();
        let sealed = seal(&r, &plaintext(len, 5), false);
        let keep = cut.index(sealed.len());
        prop_assert!(age::decrypt(&[id], &sealed[..keep], std::io::sink()).is_err());
    }

    #[test]
    fn seekable_reader_matches(len in 1usize..(4 * CHUNK_LEN), picks in prop::collection::vec((any::<prop::sample::Index>(), 0usize..100_000), 1..8)) {
        let (id, r) = pair();
        let data = plaintext(len, 9);
        let sealed = seal(&r, &data, false);
        let mut reader = SeekableReader::new(&[id], Cursor::new(sealed)).unwrap();
        prop_assert_eq!(reader.len(), len as u64);
        for (at, want) in picks {
            let start = at.index(len);
            let end = (start + want).min(len);
            reader.seek(SeekFrom::Start(start as u64)).unwrap();
            let mut got = vec![0u8; end - start];
            reader.read_exact(&mut got).unwrap();
            prop_assert!(got == data[start..end]);
        }
    }
}

#[test]
fn truncated_at_chunk_boundary_says_truncated() {
    let (id, r) = pair();
    let sealed = seal(&r, &plaintext(3 * CHUNK_LEN, 1), false);
    let header_and_two = sealed.len() - age::SEALED_CHUNK_LEN;
    let err = age::decrypt(&[id], &sealed[..header_and_two], std::io::sink()).unwrap_err();
    assert_eq!(err.class(), FailureClass::Payload);
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn tampered_chunk_names_its_offset() {
    let (id, r) = pair();
    let mut sealed = seal(&r, &plaintext(3 * CHUNK_LEN, 1), false);
    let at = sealed.len() - 10;
    sealed[at] ^= 1;
    let mut released = Vec::new();
    let err = age::decrypt(&[id], &sealed[..], &mut released).unwrap_err();
    let age::Error::Payload { chunk, offset, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(chunk, 2);
    assert_eq!(offset as usize, sealed.len() - age::SEALED_CHUNK_LEN);
    assert_eq!(
        released.len(),
        2 * CHUNK_LEN,
        "the two authentic chunks are released"
    );
}

/// The runtime use case: read a safetensors header and one tensor from an encrypted file
/// without decrypting the rest.
#[test]
fn read_one_tensor_from_an_encrypted_safetensors_file() {
    let tensor_a: Vec<u8> = (0..300_000u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    let tensor_b: Vec<u8> = (0..1000u32)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let header = format!(
        r#"{{"a":{{"dtype":"F32","shape":[300000],"data_offsets":[0,{}]}},"b":{{"dtype":"F32","shape":[1000],"data_offsets":[{},{}]}}}}"#,
        tensor_a.len(),
        tensor_a.len(),
        tensor_a.len() + tensor_b.len()
    );
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&tensor_a);
    file.extend_from_slice(&tensor_b);
    let (id, r) = pair();
    let sealed = seal(&r, &file, false);

    let mut reader = SeekableReader::new(&[id], Cursor::new(sealed)).unwrap();
    let mut len = [0u8; 8];
    reader.read_exact(&mut len).unwrap();
    let mut head = vec![0u8; u64::from_le_bytes(len) as usize];
    reader.read_exact(&mut head).unwrap();
    let head = String::from_utf8(head).unwrap();
    assert_eq!(head, header);
    let start = 8 + header.len() as u64 + tensor_a.len() as u64;
    reader.seek(SeekFrom::Start(start)).unwrap();
    let mut b = vec![0u8; tensor_b.len()];
    reader.read_exact(&mut b).unwrap();
    assert_eq!(b, tensor_b);
}

#[test]
fn seekable_reader_refuses_tampered_final_chunk() {
    let (id, r) = pair();
    let mut sealed = seal(&r, &plaintext(CHUNK_LEN + 5, 1), false);
    let last = sealed.len() - 1;
    sealed[last] ^= 0x80;
    assert!(SeekableReader::new(&[id], Cursor::new(sealed)).is_err());
}

#[test]
fn passphrase_round_trip_and_wrong_passphrase() {
    use zeroize::Zeroizing;
    let r = Recipient::Scrypt(
        age::ScryptRecipient::new(Zeroizing::new("correct horse".into()), age::MIN_LOG_N).unwrap(),
    );
    let sealed = seal(&r, b"secret", true);
    let good = Identity::Scrypt(age::ScryptIdentity::new(
        Zeroizing::new("correct horse".into()),
        22,
    ));
    let bad = Identity::Scrypt(age::ScryptIdentity::new(
        Zeroizing::new("battery".into()),
        22,
    ));
    let mut out = Vec::new();
    age::decrypt(&[good], &sealed[..], &mut out).unwrap();
    assert_eq!(out, b"secret");
    let err = age::decrypt(&[bad], &sealed[..], std::io::sink()).unwrap_err();
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    let capped = Identity::Scrypt(age::ScryptIdentity::new(
        Zeroizing::new("correct horse".into()),
        17,
    ));
    let err = age::decrypt(&[capped], &sealed[..], std::io::sink()).unwrap_err();
    assert!(
        matches!(err, age::Error::WorkFactorTooHigh { log_n: 18, max: 17 }),
        "{err}"
    );
}
