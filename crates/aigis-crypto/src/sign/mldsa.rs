//! ML-DSA-65 (FIPS 204) through RustCrypto `ml-dsa`, pinned exactly.
//!
//! Why not aws-lc-rs: its `PqdsaKeyPair::sign` takes no context string, and the composite
//! construction passes its label as the ML-DSA context (draft-ietf-lamps-pq-composite-sigs,
//! "Sign", step 4). Signing is hedged (FIPS 204 default): fresh randomness from aws-lc-rs.

use aws_lc_rs::error::Unspecified;
use ml_dsa::{B32, EncodedVerifyingKey, ExpandedSigningKey, MlDsa65, Signature, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

use super::SignError;

/// Encoded public key length (FIPS 204, Table 2).
pub const PUBLIC_LEN: usize = 1952;
/// Signature length (FIPS 204, Table 2).
pub const SIGNATURE_LEN: usize = 3309;
/// The private key is the 32-byte `KeyGen_internal` seed ξ.
pub const SEED_LEN: usize = 32;
/// FIPS 204 bounds the context string to 255 bytes.
pub const MAX_CONTEXT_LEN: usize = 255;

/// The operating system RNG (through aws-lc-rs) in the shape `ml-dsa` asks for.
struct SystemRng;

impl rand_core::TryRng for SystemRng {
    type Error = Unspecified;

    fn try_next_u32(&mut self) -> Result<u32, Unspecified> {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Unspecified> {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Unspecified> {
        aws_lc_rs::rand::fill(dst)
    }
}

impl rand_core::TryCryptoRng for SystemRng {}

/// An ML-DSA-65 private key: the seed (the interoperable form) and its expansion.
pub(crate) struct Secret {
    seed: Zeroizing<[u8; SEED_LEN]>,
    key: ExpandedSigningKey<MlDsa65>,
    public: Public,
}

/// An ML-DSA-65 public key: its encoding and the decoded form used to verify.
#[derive(Clone)]
pub(crate) struct Public {
    bytes: Box<[u8]>,
    key: VerifyingKey<MlDsa65>,
}

pub(crate) fn random_seed() -> Result<Zeroizing<[u8; SEED_LEN]>, SignError> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    aws_lc_rs::rand::fill(seed.as_mut()).map_err(|_| SignError::Random)?;
    Ok(seed)
}

impl Secret {
    pub fn generate() -> Result<Self, SignError> {
        let seed = random_seed()?;
        Ok(Self::from_seed(&seed))
    }

    /// `ML-DSA.KeyGen_internal(ξ)` (FIPS 204, Algorithm 6).
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut xi = B32::from(*seed);
        let key = ExpandedSigningKey::<MlDsa65>::from_seed(&xi);
        xi.zeroize();
        let verifying = key.verifying_key();
        let bytes: Box<[u8]> = verifying.encode().as_slice().into();
        Secret {
            seed: Zeroizing::new(*seed),
            key,
            public: Public {
                bytes,
                key: verifying,
            },
        }
    }

    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// Whether `expanded` is this key's FIPS 204 `skEncode` (checked in constant time).
    pub fn expanded_matches(&self, expanded: &[u8]) -> bool {
        #[expect(
            deprecated,
            reason = "RFC 9881 `both` keys carry the expanded form; we only compare it"
        )]
        let ours = Zeroizing::new(self.key.to_expanded());
        aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_slice(), expanded).is_ok()
    }

    pub fn public(&self) -> &Public {
        &self.public
    }

    /// `ML-DSA.Sign(sk, M, ctx)` (FIPS 204, Algorithm 2), hedged.
    pub fn sign(&self, msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, SignError> {
        if ctx.len() > MAX_CONTEXT_LEN {
            return Err(SignError::ContextTooLong { len: ctx.len() });
        }
        let sig = self
            .key
            .sign_randomized(msg, ctx, &mut SystemRng)
            .map_err(|_| SignError::Signing { alg: "ML-DSA-65" })?;
        Ok(sig.encode().as_slice().to_vec())
    }
}

impl Public {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignError> {
        let enc =
            EncodedVerifyingKey::<MlDsa65>::try_from(bytes).map_err(|_| SignError::InvalidKey {
                alg: "ML-DSA-65",
                reason: format!("public key is {} bytes, expected {PUBLIC_LEN}", bytes.len()),
            })?;
        Ok(Public {
            bytes: bytes.into(),
            key: VerifyingKey::decode(&enc),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `ML-DSA.Verify(pk, M, σ, ctx)` (FIPS 204, Algorithm 3). Any malformed input is `false`.
    pub fn verify(&self, msg: &[u8], ctx: &[u8], sig: &[u8]) -> bool {
        if sig.len() != SIGNATURE_LEN || ctx.len() > MAX_CONTEXT_LEN {
            return false;
        }
        match Signature::<MlDsa65>::try_from(sig) {
            Ok(sig) => self.key.verify_with_context(msg, ctx, &sig),
            Err(_) => false,
        }
    }
}
