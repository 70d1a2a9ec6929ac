//! Supply-chain security for AI projects: what a model and its software stack are made of, and
//! whether that can be trusted.
//!
//! - [`deps`]: lockfiles and installed environments matched against an offline OSV database.
//! - [`signing`]: OpenSSF Model Signing (OMS) bundles, CycloneDX 1.6 ML-BOMs and in-toto/SLSA
//!   provenance for model directories.

#![deny(missing_docs)]

pub mod deps;
pub mod signing;
