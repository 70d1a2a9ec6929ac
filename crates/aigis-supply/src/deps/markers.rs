//! PEP 508 environment markers (`; python_version < "3.9" and sys_platform == "win32"`),
//! evaluated against one target environment, so a requirement that would not be installed
//! there is reported as excluded instead of matched.
//!
//! Grammar (PEP 508): `or`-separated `and`-chains of `VAR OP VAR` comparisons and parenthesised
//! groups, where a `VAR` is an environment variable name or a quoted string. Comparisons follow
//! `packaging`: when the right side parses as a PEP 440 specifier with the operator (`>=3.9`,
//! `~=3.8`, `==3.*`), the left side is compared as a version; otherwise `==`, `!=`, `<`, `<=`,
//! `>`, `>=` compare strings and `in`/`not in` test substrings. Parsing is bounded
//! ([`MAX_MARKER_LEN`], [`MAX_MARKER_DEPTH`]).
//!
//! The target environment is CPython [`DEFAULT_PYTHON`] on Linux x86-64 unless set
//! ([`Environment::new`]); `platform_release` and `platform_version` are empty strings (no real
//! machine is described) and `extra` is empty (no extras were requested of a pinned line).

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifier};

/// The Python version markers are evaluated for when none is given.
pub const DEFAULT_PYTHON: &str = "3.12";
/// Longest marker read.
pub const MAX_MARKER_LEN: usize = 4096;
/// Deepest parenthesis nesting read.
pub const MAX_MARKER_DEPTH: usize = 32;

/// An operating system family a target environment can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// `sys_platform == "linux"`, `platform_system == "Linux"`, `os_name == "posix"`.
    Linux,
    /// `sys_platform == "darwin"`, `platform_system == "Darwin"`, `os_name == "posix"`.
    MacOs,
    /// `sys_platform == "win32"`, `platform_system == "Windows"`, `os_name == "nt"`.
    Windows,
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "linux" => Ok(Self::Linux),
            "macos" | "darwin" | "mac" => Ok(Self::MacOs),
            "windows" | "win32" | "win" => Ok(Self::Windows),
            _ => Err(format!(
                "unknown platform `{s}`: use linux, macos or windows"
            )),
        }
    }
}

/// The values of the marker variables for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    python_version: String,
    python_full_version: String,
    platform: Platform,
}

impl Default for Environment {
    fn default() -> Self {
        Self::new(DEFAULT_PYTHON, Platform::Linux).unwrap_or_else(|_| Self {
            python_version: DEFAULT_PYTHON.to_owned(),
            python_full_version: format!("{DEFAULT_PYTHON}.0"),
            platform: Platform::Linux,
        })
    }
}

impl Environment {
    /// CPython `python` (`3.11` or `3.11.4`) on `platform`.
    ///
    /// # Errors
    /// When `python` is not `MAJOR.MINOR` or `MAJOR.MINOR.MICRO`.
    pub fn new(python: &str, platform: Platform) -> Result<Self, String> {
        let parts: Vec<&str> = python.trim().split('.').collect();
        let numeric =
            |p: &&str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) {
            return Err(format!(
                "`{python}` is not a Python version: use MAJOR.MINOR or MAJOR.MINOR.MICRO, e.g. 3.11"
            ));
        }
        let python_version = format!("{}.{}", parts[0], parts[1]);
        let python_full_version = format!("{python_version}.{}", parts.get(2).unwrap_or(&"0"));
        Ok(Self {
            python_version,
            python_full_version,
            platform,
        })
    }

    /// A short description for reports: `CPython 3.12 on linux`.
    pub fn describe(&self) -> String {
        let os = match self.platform {
            Platform::Linux => "linux",
            Platform::MacOs => "macos",
            Platform::Windows => "windows",
        };
        format!("CPython {} on {os}", self.python_full_version)
    }

    fn value(&self, name: &str) -> Option<&str> {
        let (os_name, sys_platform, system, machine) = match self.platform {
            Platform::Linux => ("posix", "linux", "Linux", "x86_64"),
            Platform::MacOs => ("posix", "darwin", "Darwin", "arm64"),
            Platform::Windows => ("nt", "win32", "Windows", "AMD64"),
        };
        Some(match name {
            "python_version" => self.python_version.as_str(),
            "python_full_version" | "implementation_version" => self.python_full_version.as_str(),
            "os_name" | "os.name" => os_name,
            "sys_platform" | "sys.platform" => sys_platform,
            "platform_system" => system,
            "platform_machine" | "platform.machine" => machine,
            "platform_python_implementation" | "platform.python_implementation" => "CPython",
            "implementation_name" => "cpython",
            "platform_release" | "platform_version" | "platform.version" | "extra" => "",
            _ => return None,
        })
    }
}

/// Evaluates `marker` in `env`.
///
/// # Errors
/// A syntax error, an unknown variable or an operator that cannot compare the two sides, with
/// the byte offset where it was found.
pub fn evaluate(marker: &str, env: &Environment) -> Result<bool, String> {
    if marker.len() > MAX_MARKER_LEN {
        return Err(format!(
            "marker of {} bytes exceeds the {MAX_MARKER_LEN}-byte limit",
            marker.len()
        ));
    }
    let tokens = tokenize(marker)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        env,
    };
    let value = parser.or(0)?;
    match parser.tokens.get(parser.pos) {
        None => Ok(value),
        Some((at, t)) => Err(format!("unexpected {} at byte {at}", t.describe())),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Name(String),
    Str(String),
    Op(&'static str),
    Open,
    Close,
    And,
    Or,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Name(n) => format!("`{n}`"),
            Token::Str(s) => format!("string {s:?}"),
            Token::Op(o) => format!("`{o}`"),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
            Token::And => "`and`".into(),
            Token::Or => "`or`".into(),
        }
    }
}

const OPERATORS: [&str; 8] = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"];

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let mut tokens = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            b'(' => {
                i += 1;
                Token::Open
            }
            b')' => {
                i += 1;
                Token::Close
            }
            b'"' | b'\'' => {
                let close = text[i + 1..]
                    .find(char::from(c))
                    .ok_or_else(|| format!("unterminated string at byte {i}"))?;
                let value = text[i + 1..i + 1 + close].to_owned();
                i += close + 2;
                Token::Str(value)
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let end = text[i..]
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
                    .map_or(text.len(), |n| i + n);
                let word = &text[i..end];
                i = end;
                match word {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "in" => Token::Op("in"),
                    "not" => {
                        let rest = text[i..].trim_start();
                        let Some(after) = rest.strip_prefix("in") else {
                            return Err(format!("`not` without `in` at byte {start}"));
                        };
                        if after.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '_') {
                            return Err(format!("`not` without `in` at byte {start}"));
                        }
                        i = text.len() - after.len();
                        Token::Op("not in")
                    }
                    _ => Token::Name(word.to_owned()),
                }
            }
            _ => {
                let op = OPERATORS
                    .iter()
                    .find(|op| text[i..].starts_with(*op))
                    .ok_or_else(|| {
                        let ch = text[i..].chars().next().unwrap_or('?');
                        format!("unexpected character {ch:?} at byte {i}")
                    })?;
                i += op.len();
                Token::Op(op)
            }
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [(usize, Token)],
    pos: usize,
    env: &'a Environment,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&(usize, Token)> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    /// Both sides are always parsed (a syntax error anywhere is reported), then combined.
    fn or(&mut self, depth: usize) -> Result<bool, String> {
        let mut value = self.and(depth)?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let rhs = self.and(depth)?;
            value = value || rhs;
        }
        Ok(value)
    }

    fn and(&mut self, depth: usize) -> Result<bool, String> {
        let mut value = self.atom(depth)?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let rhs = self.atom(depth)?;
            value = value && rhs;
        }
        Ok(value)
    }

    fn atom(&mut self, depth: usize) -> Result<bool, String> {
        if self.peek() == Some(&Token::Open) {
            if depth >= MAX_MARKER_DEPTH {
                return Err(format!("parentheses nested deeper than {MAX_MARKER_DEPTH}"));
            }
            self.pos += 1;
            let value = self.or(depth + 1)?;
            return match self.next() {
                Some((_, Token::Close)) => Ok(value),
                Some((at, t)) => Err(format!("expected `)` at byte {at}, found {}", t.describe())),
                None => Err("unclosed `(`".into()),
            };
        }
        let lhs = self.operand()?;
        let op = match self.next() {
            Some((_, Token::Op(op))) => *op,
            Some((at, t)) => {
                return Err(format!(
                    "expected a comparison operator at byte {at}, found {}",
                    t.describe()
                ));
            }
            None => return Err("the marker ends before its comparison operator".into()),
        };
        let rhs = self.operand()?;
        compare(&lhs, op, &rhs)
    }

    fn operand(&mut self) -> Result<String, String> {
        let env = self.env;
        match self.next() {
            Some((_, Token::Str(s))) => Ok(s.clone()),
            Some((at, Token::Name(n))) => env
                .value(n)
                .map(str::to_owned)
                .ok_or_else(|| format!("unknown marker variable `{n}` at byte {at}")),
            Some((at, t)) => Err(format!(
                "expected a variable or a quoted string at byte {at}, found {}",
                t.describe()
            )),
            None => Err("the marker ends where a value was expected".into()),
        }
    }
}

/// `packaging`'s rule: a version comparison when `OP RHS` is a valid specifier and the left
/// side a valid version, else a string comparison.
fn compare(lhs: &str, op: &str, rhs: &str) -> Result<bool, String> {
    match op {
        "in" => return Ok(rhs.contains(lhs)),
        "not in" => return Ok(!rhs.contains(lhs)),
        _ => {}
    }
    if op != "===" {
        let spec = VersionSpecifier::from_str(&format!("{op}{rhs}"));
        let version = Version::from_str(lhs);
        if let (Ok(spec), Ok(version)) = (spec, version) {
            return Ok(spec.contains(&version));
        }
    }
    Ok(match op {
        "==" | "===" => lhs == rhs,
        "!=" => lhs != rhs,
        "<" => lhs < rhs,
        "<=" => lhs <= rhs,
        ">" => lhs > rhs,
        ">=" => lhs >= rhs,
        _ => {
            return Err(format!(
                "`{lhs}` {op} `{rhs}` cannot be compared (`~=` needs versions)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(m: &str) -> Result<bool, String> {
        evaluate(m, &Environment::new("3.11.4", Platform::Linux).unwrap())
    }

    #[test]
    fn versions_compare_as_versions() {
        assert_eq!(eval("python_version < \"3.9\""), Ok(false));
        assert_eq!(
            eval("python_version >= '3.10'"),
            Ok(true),
            "3.11 >= 3.10 (not as strings)"
        );
        assert_eq!(eval("python_full_version == '3.11.*'"), Ok(true));
        assert_eq!(eval("python_version ~= '3.8'"), Ok(true));
        assert_eq!(eval("python_version != '3.11'"), Ok(false));
        // A variable on the right: `'3.9' <= python_version` is `3.9` in `<=3.11`.
        assert_eq!(eval("'3.9' <= python_version"), Ok(true));
        assert_eq!(eval("'3.12' <= python_version"), Ok(false));
    }

    #[test]
    fn strings_platforms_and_logic() {
        assert_eq!(eval("sys_platform == \"win32\""), Ok(false));
        assert_eq!(
            eval("sys_platform == 'linux' and platform_machine == 'x86_64'"),
            Ok(true)
        );
        assert_eq!(
            eval("os_name == 'nt' or (platform_system == 'Linux' and python_version > '3')"),
            Ok(true)
        );
        assert_eq!(eval("'linux' in sys_platform"), Ok(true));
        assert_eq!(eval("sys_platform not in 'win32 cygwin'"), Ok(true));
        assert_eq!(eval("extra == 'socks'"), Ok(false));
        assert_eq!(eval("implementation_name == 'cpython'"), Ok(true));
        let windows = Environment::new("3.8", Platform::Windows).unwrap();
        assert_eq!(
            evaluate(
                "sys_platform == 'win32' and python_version < '3.9'",
                &windows
            ),
            Ok(true)
        );
        assert_eq!(windows.describe(), "CPython 3.8.0 on windows");
    }

    #[test]
    fn bad_markers_are_errors_with_offsets() {
        for (bad, needle) in [
            ("python_version <", "ends where a value"),
            ("python_version '3.9'", "comparison operator at byte 15"),
            (
                "pythonversion < '3'",
                "unknown marker variable `pythonversion`",
            ),
            ("(python_version < '3'", "unclosed"),
            ("python_version < '3' )", "unexpected `)`"),
            ("python_version < \"3", "unterminated string"),
            ("python_version ~= 'abc'", "cannot be compared"),
            ("python_version not '3'", "`not` without `in`"),
            ("sys_platform = 'x'", "unexpected character '='"),
        ] {
            let err = eval(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let deep = format!("{}python_version > '3'{}", "(".repeat(40), ")".repeat(40));
        assert!(eval(&deep).unwrap_err().contains("nested deeper"));
        assert!(
            eval(&"x".repeat(MAX_MARKER_LEN + 1))
                .unwrap_err()
                .contains("limit")
        );
        assert!(Environment::new("3", Platform::Linux).is_err());
        assert!(Environment::new("three.eleven", Platform::Linux).is_err());
        assert!("solaris".parse::<Platform>().is_err());
    }
}
