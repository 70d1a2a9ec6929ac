//! The `inspect` stage: the guard on the way in ([`request`]) and on the way out
//! ([`response`] for complete responses, [`stream`] for server-sent events, read by [`sse`]).

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod sse;
pub(crate) mod stream;

pub use request::{RequestInspected, inspect};
