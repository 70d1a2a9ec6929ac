//! `aigis-mock-upstream`: run the mock server for benchmarks and end-to-end tests.

use std::net::SocketAddr;
use std::time::Duration;

use aigis_mock_upstream::{Behavior, spawn_on};
use clap::Parser;

/// A deterministic OpenAI-compatible mock upstream (tests and benchmarks only).
#[derive(Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Milliseconds to wait before the response headers.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 4)]
    chunks: usize,
    /// Milliseconds between streamed chunks.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Answer every request with this HTTP status.
    #[arg(long)]
    status: Option<u16>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let behavior = Behavior {
        latency: Duration::from_millis(args.latency_ms),
        chunks: args.chunks,
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        status: args.status,
        ..Behavior::default()
    };
    let task = spawn_on(listener, behavior);
    tokio::select! {
        _ = task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
