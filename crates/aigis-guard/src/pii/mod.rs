//! PII recognisers (to be written).
