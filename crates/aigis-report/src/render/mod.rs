//! The three renderers. Each takes the whole report and writes one document; none of them
//! decides order or counts itself: they use [`crate::Report::sorted_findings`] and
//! [`crate::Report::summary`], so the formats always agree.

pub(crate) mod json;
pub(crate) mod sarif;
pub(crate) mod table;
