//! # aigis-gateway
//!
//! An OpenAI-compatible reverse proxy that every call to a model passes through. A request
//! flows through one stage per module, composed in one place (`pipeline`):
//!
//! ```text
//! listen    (TCP / TLS 1.3, X25519MLKEM768 preferred)
//!   -> identify  (API key -> Principal; failures throttled)               identify/
//!   -> parse     (endpoint, JSON depth, sizes, message count, n)          parse.rs
//!   -> resolve   (model -> route -> upstreams, per-route max_tokens cap)  resolve.rs
//!   -> authorize (Cedar, default deny -> Authorized)                      authorize/
//!   -> routable  (a route whose model failed its check answers 503)       model_check.rs
//!   -> admit     (rate, token, concurrency and budget limits, local or
//!                 Redis -> Admitted + Ticket)                              admit/
//!   -> inspect   (guard: block / redact / pseudonymize -> RequestInspected) inspect.rs
//!   -> forward   (pooled client, timeouts, failover before first byte,
//!                 circuit breaker, per-upstream concurrency cap)          forward/
//!   -> settle    (the Ticket against actual usage; streams metered)      settle.rs
//!   -> record    (access log without content, metrics,
//!                 audit ledger event)                                     pipeline.rs, record.rs
//! ```
//!
//! ## Non-goals
//! No translation between OpenAI and Anthropic formats; no open proxying (only configured
//! upstreams are reachable); no response caching.

#![deny(missing_docs)]

pub mod access_log;
mod admin;
mod admin_api;
pub mod admin_client;
pub mod admit;
pub mod authorize;
pub mod body;
mod capture;
pub mod config;
pub mod error;
pub mod forward;
pub mod forwarded;
pub mod identify;
pub mod inspect;
pub mod metrics;
pub mod model_check;
pub mod parse;
mod pipeline;
pub mod proxy_protocol;
mod record;
pub mod resolve;
mod server;
mod settle;
pub mod tls;

pub use model_check::ModelCheck;
pub use server::{Gateway, Runtime, StartError};
