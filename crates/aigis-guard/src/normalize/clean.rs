//! The cleaned text the PII and secrets detectors (and banned patterns) read besides the original, so that a value
//! split by a zero-width space (`ghp_…\u{200B}…`, `jane\u{200B}@example.com`), written in
//! fullwidth digits or grouped with narrow no-break spaces is still found.
//!
//! Cleaning removes the characters [`normalize`](super::normalize) removes (invisible, bidi and
//! other format characters), applies NFKC to each character (fullwidth and mathematical forms,
//! ligatures) and turns every other space, and the blank fillers, into an ASCII one. Combining
//! marks are composed or removed as normalisation decides (`Cluster`): strike-through
//! `g\u{336}h\u{336}p\u{336}_…` reads `ghp_…`. Unlike normalisation it keeps case,
//! leetspeak and look-alike letters: folding those would corrupt key material and checksums.
//!
//! Only [`Window`]s around the characters that cleaning changes are cleaned (and scanned): the
//! change with [`MARGIN`] bytes either side, widened to whitespace (at most [`MAX_STRETCH`] bytes
//! further) so that no token is cut. A document with a few zero-width characters costs a few
//! hundred bytes of extra scanning; ASCII text costs nothing (the engine and the output stream
//! skip it).

use std::ops::Range;

use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

use super::{Cluster, FILLER, Origin, ascii_prefix, hidden_kind, span_in};
use crate::Detection;

/// Bytes kept either side of a changed character: room for a value's other tokens (a phone
/// number's groups, an IBAN's blocks) and the context words near it.
const MARGIN: usize = 128;

/// Farthest a window's edge moves past [`MARGIN`] to reach whitespace.
const MAX_STRETCH: usize = 1024;

/// A stretch of the original text, cleaned, with the way back to the original.
#[derive(Debug, Clone)]
pub struct Window {
    /// The cleaned text.
    pub text: String,
    /// For each byte of `text`, the original character it came from (offsets in the whole
    /// original, not the window).
    origin: Vec<Origin>,
}

impl Window {
    /// The byte range of the original text that produced `range` of the cleaned text: from the
    /// start of its first character to the end of its last, so a removed character inside is
    /// covered too.
    pub fn original_span(&self, range: Range<usize>) -> Range<usize> {
        span_in(&self.origin, range)
    }
}

/// What cleaning does to a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep,
    Drop,
    /// An unusual space or line break, written as this ASCII one.
    Space(char),
    /// NFKC changes it.
    Fold,
}

/// What cleaning does to a non-ASCII `c`; `splits`: a joiner or variation selector here would
/// split a value (it follows no emoji).
fn step(c: char, splits: bool) -> Step {
    // Joiners and variation selectors after an emoji build the emoji: they stay, as they do
    // not split a value. After anything else (a letter, a digit, `-`, `_`, `@`) they are
    // removed, so `sk-\u{200D}proj-…` reads whole.
    match hidden_kind(c, splits) {
        // A blank filler reads as a space.
        Some(FILLER) => return Step::Space(' '),
        Some(_) => return Step::Drop,
        None if matches!(c, '\u{200E}' | '\u{200F}' | '\u{034F}' | '\u{061C}') => {
            return Step::Drop;
        }
        None => {}
    }
    if c.is_whitespace() {
        return Step::Space(if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
            '\n'
        } else {
            ' '
        });
    }
    let mut folded = std::iter::once(c).nfkc();
    if folded.next() == Some(c) && folded.next().is_none() {
        Step::Keep
    } else {
        Step::Fold
    }
}

/// The [`Window`]s of `original` around every character cleaning changes, in order and apart;
/// none when there is no such character. Linear in the text; ASCII runs are skipped 64 bytes at
/// a time.
pub fn cleaned_windows(original: &str) -> Vec<Window> {
    let bytes = original.as_bytes();
    let end = bytes.len().min(Origin::MAX + 1);
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut splits = true;
    // The last character of the cleaned text, and the marks read after it.
    let mut last: Option<char> = None;
    let mut cluster = Cluster::default();
    let mut at = 0;
    while at < end {
        let ascii_end = at + ascii_prefix(&bytes[at..end]);
        if ascii_end > at {
            splits = true;
            last = Some(char::from(bytes[ascii_end - 1]));
            cluster = Cluster::default();
            at = ascii_end;
            continue;
        }
        let Some(c) = original[at..].chars().next() else {
            break;
        };
        let s = step(c, splits);
        let mut changed = s != Step::Keep;
        if s != Step::Drop {
            // A mark joins the character before it as `clean` joins it: only one it removes
            // changes the text (a composed accent is the same letter).
            let joined = Cluster::may_join(c)
                .then(|| cluster.join(last.map(|l| (l, Origin::default())), c, Origin::default()))
                .flatten();
            if let Some(j) = joined {
                changed = j.removed;
                last = j.last.map(|(k, _)| k).or(last);
            } else {
                cluster = Cluster::default();
                last = match s {
                    Step::Space(space) => Some(space),
                    Step::Fold => std::iter::once(c).nfkc().last(),
                    Step::Keep | Step::Drop => Some(c),
                };
                splits = follows_no_emoji(c);
            }
        }
        if changed {
            let (lo, hi) = (at.saturating_sub(MARGIN), at + c.len_utf8() + MARGIN);
            match spans.last_mut() {
                Some(last) if lo <= last.end => last.end = hi,
                _ => spans.push(lo..hi),
            }
        }
        at += c.len_utf8();
    }
    let mut windows: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        let span = widen(original, span, end);
        match windows.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => windows.push(span),
        }
    }
    windows.into_iter().map(|w| clean(original, w)).collect()
}

/// Runs `detect` over every cleaned [`Window`] of `text` and adds what it finds to `found` (the
/// detections of `text` itself), with spans in `text`. A detection of bytes cleaning left as they
/// were is dropped (the scan of `text` read them); one that overlaps a detection of the same
/// detector and kind widens it instead (the same value, seen whole here and in part or also in
/// `text`). Cheap for pure-ASCII text, which has no windows: callers with many texts check
/// `is_ascii` first.
pub(crate) fn scan_windows(
    text: &str,
    found: &mut Vec<Detection>,
    mut detect: impl FnMut(&str, &mut Vec<Detection>),
) {
    // The text's own findings, by start, are looked up by position, and the windows' come in
    // order, so a text with many findings (a body of addresses, each split by a zero-width
    // space) merges in n log n, not n². A widened finding can fall out of that order; one
    // missed so is left overlapping, and rewriting merges overlaps.
    found.sort_by_key(|f| f.span.start);
    let own = found.len();
    let mut longest = found.iter().map(|f| f.span.len()).max().unwrap_or(0);
    let mut inner = Vec::new();
    for window in cleaned_windows(text) {
        detect(&window.text, &mut inner);
        for mut d in inner.drain(..) {
            let mut span = window.original_span(d.span.clone());
            if text.get(span.clone()) == window.text.get(d.span.clone()) {
                continue;
            }
            // Marks on the value's last letter are the value's (its origin covers one at most).
            span.end += text[span.end..]
                .chars()
                .take_while(|&c| c >= '\u{300}' && is_combining_mark(c))
                .map(char::len_utf8)
                .sum::<usize>();
            d.span = span;
            let (own_found, added) = found.split_at_mut(own);
            let hi = own_found.partition_point(|f| f.span.start < d.span.end);
            let lo = own_found.partition_point(|f| f.span.start + longest <= d.span.start);
            let near_own = own_found[lo.min(hi)..hi].iter_mut();
            let near_added = added.iter_mut().rev().take(MERGE_BACK);
            if !widen_same(near_own, &d) && !widen_same(near_added, &d) {
                longest = longest.max(d.span.len());
                found.push(d);
            }
        }
    }
}

/// How many of the windows' latest findings a new one is merged with: windows are apart and
/// in order, so only a value found at the edge of the last ones can overlap it.
const MERGE_BACK: usize = 8;

/// Widens the first detection of `found` with `d`'s detector and kind that overlaps `d` to cover
/// both; false when there is none.
pub(crate) fn widen_same<'a>(
    found: impl IntoIterator<Item = &'a mut Detection>,
    d: &Detection,
) -> bool {
    let same = found.into_iter().find(|f| {
        f.detector == d.detector
            && f.kind == d.kind
            && f.span.start < d.span.end
            && d.span.start < f.span.end
    });
    match same {
        Some(f) => {
            f.span = f.span.start.min(d.span.start)..f.span.end.max(d.span.end);
            true
        }
        None => false,
    }
}

/// `text` cleaned whole (for short texts, such as a stream's last word; ASCII is borrowed).
pub(crate) fn cleaned(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(clean(text, 0..text.len()).text)
    }
}

/// `span` widened to the whitespace before and after it (at most [`MAX_STRETCH`] bytes
/// further), within `..end` and on character boundaries.
fn widen(original: &str, span: Range<usize>, end: usize) -> Range<usize> {
    let bytes = original.as_bytes();
    let mut lo = span.start;
    let floor = lo.saturating_sub(MAX_STRETCH);
    lo = bytes[floor..lo]
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .map_or(floor, |i| floor + i + 1);
    while !original.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = span.end.min(end);
    let ceiling = (hi + MAX_STRETCH).min(end);
    hi = bytes[hi..ceiling]
        .iter()
        .position(u8::is_ascii_whitespace)
        .map_or(ceiling, |i| hi + i);
    while !original.is_char_boundary(hi) {
        hi += 1;
    }
    lo..hi
}

/// Cleans `range` of `original` (on character boundaries).
fn clean(original: &str, range: Range<usize>) -> Window {
    let bytes = original.as_bytes();
    let mut text = String::with_capacity(range.len());
    let mut origin = Vec::with_capacity(range.len());
    let mut splits = original[..range.start]
        .chars()
        .next_back()
        .is_none_or(follows_no_emoji);
    let mut cluster = Cluster::default();
    let mut at = range.start;
    while at < range.end {
        let ascii_end = at + ascii_prefix(&bytes[at..range.end]);
        if ascii_end > at {
            text.push_str(&original[at..ascii_end]);
            origin.extend(Origin::ascii(at..ascii_end));
            splits = true;
            cluster = Cluster::default();
            at = ascii_end;
            continue;
        }
        let Some(c) = original[at..].chars().next() else {
            break;
        };
        let from = Origin::new(at, c);
        at += c.len_utf8();
        let s = step(c, splits);
        if s == Step::Drop {
            continue;
        }
        // Combining marks as normalisation treats them: composed with their letter, or removed
        // from a Latin, Greek or Cyrillic letter they only decorate (`g\u{336}h\u{336}p\u{336}_`);
        // the letter's origin then covers its marks.
        if Cluster::may_join(c) && cluster.join_onto(&mut text, &mut origin, c, from).is_some() {
            continue;
        }
        cluster = Cluster::default();
        let mut push = |c: char| {
            text.push(c);
            origin.extend(std::iter::repeat_n(from, c.len_utf8()));
        };
        match s {
            Step::Drop => {}
            Step::Keep => push(c),
            Step::Space(space) => push(space),
            Step::Fold => std::iter::once(c).nfkc().for_each(push),
        }
        splits = follows_no_emoji(c);
    }
    Window { text, origin }
}

/// Whether a joiner or variation selector after `c` splits a value rather than builds an
/// emoji: after ASCII, letters and digits it does; after other symbols (emoji) it may not.
fn follows_no_emoji(c: char) -> bool {
    c.is_ascii() || c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(s: &str) -> Vec<(String, Range<usize>)> {
        cleaned_windows(s)
            .into_iter()
            .map(|w| {
                let all = w.original_span(0..w.text.len());
                (w.text, all)
            })
            .collect()
    }

    #[test]
    fn ascii_and_unchanged_text_have_no_windows() {
        assert!(cleaned_windows("plain ASCII text, mail jane@example.com").is_empty());
        assert!(cleaned_windows("café — 漢字 naïve 👩\u{200D}💻").is_empty());
    }

    #[test]
    fn removes_folds_and_maps_back() {
        let text = "key ghp_ab\u{200B}cd, ＡＫＩＡ１２ and +1\u{202F}415";
        let w = &cleaned_windows(text)[0];
        assert_eq!(w.text, "key ghp_abcd, AKIA12 and +1 415");
        let at = w.text.find("ghp_abcd").unwrap();
        assert_eq!(
            &text[w.original_span(at..at + 8)],
            "ghp_ab\u{200B}cd",
            "the removed character is inside the span"
        );
        let at = w.text.find("AKIA12").unwrap();
        assert_eq!(&text[w.original_span(at..at + 6)], "ＡＫＩＡ１２");
        // Case, leetspeak and look-alikes stay as they are.
        assert_eq!(cleaned("Ab1\u{200B}\u{456}x")[0].0, "Ab1\u{456}x");
    }

    #[test]
    fn marks_are_removed_or_composed_as_normalisation_does() {
        // Strike-through, overline and underline on ASCII letters, digits and symbols go, and
        // a letter's origin covers its mark.
        let text = "key A\u{336}K\u{336}I\u{336}A\u{336}1\u{335}2\u{332}_\u{338} end";
        let w = &cleaned_windows(text)[0];
        assert_eq!(w.text, "key AKIA12_ end");
        assert_eq!(&text[w.original_span(4..11)], &text[4..text.len() - 4]);
        // Composable accents compose, in either case; other scripts keep their marks; a mark
        // that composes alone makes no window.
        assert_eq!(
            cleaned("x\u{200B} E\u{301}cole e\u{301}\u{336} \u{915}\u{93F}")[0].0,
            "x Ecole e \u{915}\u{93F}".replace("Ecole", "\u{C9}cole")
        );
        assert!(cleaned_windows("E\u{301}cole \u{915}\u{93F}").is_empty());
    }

    #[test]
    fn windows_are_local_and_do_not_cut_tokens() {
        let filler = "word ".repeat(200);
        let token = format!("{}\u{200B}{}", "a".repeat(300), "b".repeat(300));
        let text = format!("{filler}{token} {filler}x\u{00A0}y {filler}");
        let found = cleaned(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        // The whole token, and a margin of whole words.
        assert!(found[0].0.contains(&token.replace('\u{200B}', "")));
        assert!(found[0].0.len() < token.len() + 2 * (MARGIN + 8));
        assert!(found[1].0.contains("x y"));
        for (_, span) in found {
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        }
    }

    proptest::proptest! {
        #[test]
        fn windows_map_into_the_original_on_boundaries(
            s in "[a-z0-9 @.\u{200B}\u{202F}\u{FF11}\u{FF41}é漢\u{301}\u{336}\u{93F}]{0,300}|\\PC{0,80}"
        ) {
            let mut last = 0;
            for w in cleaned_windows(&s) {
                for i in 0..w.text.len() {
                    let r = w.original_span(i..i + 1);
                    proptest::prop_assert!(r.start >= last && r.end <= s.len());
                    proptest::prop_assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end));
                }
                last = w.original_span(0..w.text.len()).end;
            }
        }
    }
}
