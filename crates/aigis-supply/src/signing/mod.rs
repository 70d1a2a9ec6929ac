//! Model signing (OpenSSF Model Signing), ML-BOMs and provenance for model directories.
