//! SHA-256 and HMAC-SHA-256 (RFC 2104) over the `sha2` crate's compression function: the
//! ledger hashes every leaf and node of its tree and digests every recorded request's prompt
//! and response, so these run on the gateway's hot path.
//!
//! For HMAC the key's inner and outer states (the compressions of `key ⊕ ipad` and
//! `key ⊕ opad`) are computed once, when the key is loaded: a digest then costs only the blocks
//! of its message plus one outer block. Through general hash and HMAC APIs each short hash
//! also went through several calls across a C boundary (context set-up, copies, clean-up),
//! which for a 65-byte node or a short prompt cost as much as the hashing. The HMAC states are
//! key material: both HMAC types zeroize them on drop.

use sha2::block_api::compress256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-256's initial state (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// An incremental SHA-256.
#[derive(Clone)]
pub(crate) struct Sha256 {
    state: [u32; 8],
    buf: [u8; 64],
    fill: usize,
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::resume(IV, 0)
    }
}

impl Sha256 {
    /// Continues from `state` after `len` bytes (a multiple of 64).
    fn resume(state: [u32; 8], len: u64) -> Self {
        Self {
            state,
            buf: [0; 64],
            fill: 0,
            len,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) -> &mut Self {
        self.len += data.len() as u64;
        if self.fill > 0 {
            let take = (64 - self.fill).min(data.len());
            self.buf[self.fill..self.fill + take].copy_from_slice(&data[..take]);
            self.fill += take;
            data = &data[take..];
            if self.fill < 64 {
                return self;
            }
            compress256(&mut self.state, &[self.buf]);
            self.fill = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        if !blocks.is_empty() {
            compress256(&mut self.state, blocks);
        }
        self.buf[..rest.len()].copy_from_slice(rest);
        self.fill = rest.len();
        self
    }

    /// The hash (the final padding, then the state's words big-endian).
    pub(crate) fn finish(&mut self) -> [u8; 32] {
        let fill = self.fill;
        self.buf[fill] = 0x80;
        self.buf[fill + 1..].fill(0);
        if fill >= 56 {
            compress256(&mut self.state, &[self.buf]);
            self.buf.fill(0);
        }
        self.buf[56..].copy_from_slice(&(self.len * 8).to_be_bytes());
        compress256(&mut self.state, &[self.buf]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn wipe(&mut self) {
        self.state.zeroize();
        self.buf.zeroize();
    }
}

/// A 32-byte HMAC-SHA-256 key, prepared.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let mut block = [0x36u8; 64];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        let mut inner = IV;
        compress256(&mut inner, &[block]);
        for b in &mut block {
            *b ^= 0x36 ^ 0x5c;
        }
        let mut outer = IV;
        compress256(&mut outer, &[block]);
        block.zeroize();
        Self { inner, outer }
    }

    /// A MAC computation under this key.
    pub(crate) fn start(&self) -> Mac {
        Mac {
            // The inner hash has already taken the 64-byte `key ⊕ ipad` block.
            inner: Sha256::resume(self.inner, 64),
            outer: self.outer,
        }
    }
}

/// An HMAC-SHA-256 computation in progress.
#[derive(Clone)]
pub(crate) struct Mac {
    inner: Sha256,
    outer: [u32; 8],
}

impl Mac {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The 32-byte tag.
    pub(crate) fn finish(mut self) -> [u8; 32] {
        let inner = self.inner.finish();
        Sha256::resume(self.outer, 64).update(&inner).finish()
    }
}

impl Drop for Mac {
    fn drop(&mut self) {
        self.inner.wipe();
        self.outer.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(key: &[u8; 32], pieces: &[&[u8]]) -> Vec<u8> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        for p in pieces {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }

    #[test]
    fn sha256_of_the_fips_examples() {
        assert_eq!(
            hex::encode(Sha256::default().update(b"abc").finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let two_blocks = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            hex::encode(Sha256::default().update(two_blocks).finish()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex::encode(Sha256::default().finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc_4231_test_case_2_with_a_short_key_padded_to_32_bytes() {
        // HMAC pads a short key with zeros to the block size, so "Jefe" and "Jefe" followed
        // by 28 zero bytes are the same key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mut mac = HmacKey::new(&key).start();
        mac.update(b"what do ya want ");
        mac.update(b"for nothing?");
        assert_eq!(
            hex::encode(mac.finish()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    proptest! {
        #[test]
        fn hash_and_mac_match_aws_lc_for_any_message_split_anywhere(
            key in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(any::<usize>(), 0..4),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (message.len() + 1)).collect();
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for &to in &at {
                pieces.push(&message[from..to]);
                from = to;
            }
            pieces.push(&message[from..]);
            let mut mac = HmacKey::new(&key).start();
            for p in &pieces {
                mac.update(p);
            }
            prop_assert_eq!(mac.finish().to_vec(), reference(&key, &pieces));
            let mut hash = Sha256::default();
            for p in &pieces {
                hash.update(p);
            }
            let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
            prop_assert_eq!(&hash.finish()[..], expected.as_ref());
        }
    }
}
