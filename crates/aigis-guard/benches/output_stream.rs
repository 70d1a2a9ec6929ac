//! Response-side inspection cost per streamed token: one `TextStream::push` per SSE event's
//! text, with every output detector of the profile on.
//!
//! `cargo bench -p aigis-guard --bench output_stream`
#![allow(missing_docs, clippy::unwrap_used)]

use aigis_guard::output::{Protected, Scope, TextStream};
use aigis_guard::{Guard, Policy, Profile};

fn main() {
    divan::main();
}

/// A 4 KiB answer in 4-byte tokens, like an LLM's deltas (prose, a list, a link, a number).
fn tokens() -> Vec<String> {
    let paragraph = "The quarterly report shows revenue grew 12% to 4.2 million euros. \
        Key drivers:\n- enterprise renewals in the DACH region\n- the new [pricing page](https://docs.example.com/pricing)\n\
        Contact the finance team for the detailed breakdown by product line and region. ";
    let text: String = paragraph.repeat(4096 / paragraph.len() + 1);
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

fn run(bencher: divan::Bencher, profile: &str, pii_redact: bool) {
    let guard = Guard::new();
    let mut p = Profile::builtin(profile).unwrap();
    if pii_redact {
        p.output.pii = aigis_guard::Action::Redact;
    }
    let policy = Policy::new(p).unwrap();
    let protected = Protected::new([
        "You are the finance assistant of Acme. Answer questions about the quarterly report using the attached figures only.",
    ]);
    let canaries = vec!["aigis-canary-0123456789abcdef".to_owned()];
    let scope = Scope {
        guard: &guard,
        policy: &policy,
        canaries: &canaries,
        protected: &protected,
    };
    let tokens = tokens();
    bencher
        .counter(divan::counter::ItemsCount::new(tokens.len()))
        .bench_local(|| {
            let mut s = TextStream::default();
            let mut out = 0;
            for t in &tokens {
                out += s.push(&scope, t).text.len();
            }
            out + s.finish(&scope).text.len()
        });
}

#[divan::bench]
fn balanced(bencher: divan::Bencher) {
    run(bencher, "balanced", false);
}

#[divan::bench]
fn strict_pii_redacted(bencher: divan::Bencher) {
    run(bencher, "strict", true);
}
