//! Arbitrary bytes through the whole guard engine (normalise, decode, every detector, rewrite)
//! under the strict profile: no panic, and every rewrite keeps spans on character boundaries.
#![no_main]

use std::sync::LazyLock;

use aigis_guard::{Guard, Part, Policy, Profile, Source};
use libfuzzer_sys::fuzz_target;

static GUARD: LazyLock<Guard> = LazyLock::new(Guard::new);
static POLICY: LazyLock<Policy> =
    LazyLock::new(|| Policy::new(Profile::builtin("strict").unwrap()).unwrap());

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for source in [Source::User, Source::Tool] {
        let decision = GUARD.inspect(&POLICY, &[Part { text: &text, source }], None);
        for f in &decision.findings {
            assert!(text.is_char_boundary(f.detection.span.start));
            assert!(text.is_char_boundary(f.detection.span.end));
        }
    }
});
