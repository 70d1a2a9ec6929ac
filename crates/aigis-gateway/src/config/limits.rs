//! The typed `[[limits]]`, `[[prices]]` and fleet-store configuration, and the parsers of the
//! rate (`"600/min"`, `"2M/day"`) and budget (`"500USD/month"`, `"10M tokens/day"`) strings.

use std::time::Duration;

use super::units::parse_duration;

/// `[[limits]]`, `[[prices]]` and where limit state lives.
#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    /// Every limit, in file order.
    pub limits: Vec<Limit>,
    /// Prices per model glob, in file order (the first match wins).
    pub prices: Vec<Price>,
    /// `[cluster] redis`: shared limit state for a fleet; `None` keeps it in this process.
    pub redis: Option<RedisStore>,
}

impl LimitsConfig {
    /// The price of `model`, if a `[[prices]]` entry matches it.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.prices
            .iter()
            .find(|p| super::glob_match(&p.model, model))
    }
}

/// A fleet's shared limit store.
#[derive(Debug, Clone)]
pub struct RedisStore {
    /// `redis://…` or `rediss://…`.
    pub url: String,
    /// Prefix of every key aigis writes (so several deployments or tests can share a server).
    pub key_prefix: String,
    /// How long one round trip may take before the store counts as unreachable.
    pub timeout: Duration,
}

/// One `[[limits]]` entry.
#[derive(Debug, Clone)]
pub struct Limit {
    /// Unique name, shown to the caller who hits it.
    pub name: String,
    /// What one counter is kept per: e.g. `[Principal]`, or `[Team, Model]` for one counter
    /// per team and model. Empty means one counter for everyone.
    pub scope: Vec<Scope>,
    /// What is counted.
    pub quantity: Quantity,
    /// Only requests for these models (exact names or globs) count; empty means all.
    pub models: Vec<String>,
    /// Only requests on these routes count; empty means all.
    pub routes: Vec<String>,
    /// What happens when the shared store cannot be reached.
    pub on_store_error: OnStoreError,
}

/// A dimension a limit keeps separate counters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The authenticated principal.
    Principal,
    /// Each team of the principal (a principal in two teams counts against both).
    Team,
    /// The requested model.
    Model,
    /// The route serving the request.
    Route,
    /// The client's IP address.
    Ip,
}

impl Scope {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Team => "team",
            Self::Model => "model",
            Self::Route => "route",
            Self::Ip => "ip",
        }
    }

    /// Parses a config name (`global` is handled by the caller).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "principal" => Self::Principal,
            "team" => Self::Team,
            "model" => Self::Model,
            "route" => Self::Route,
            "ip" => Self::Ip,
            _ => return None,
        })
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy)]
pub enum Quantity {
    /// Requests per interval.
    Requests(Rate),
    /// Tokens per interval.
    Tokens(TokenKind, Rate),
    /// Requests in flight at once.
    Concurrent(u32),
    /// Spend per calendar day or month (UTC).
    Budget(Budget),
}

impl Quantity {
    /// The word for what is counted, as in `x-ratelimit-*-requests`.
    pub fn unit(&self) -> &'static str {
        match self {
            Self::Requests(_) => "requests",
            Self::Tokens(..) => "tokens",
            Self::Concurrent(_) => "concurrent requests",
            Self::Budget(b) => match b.unit {
                BudgetUnit::MicroUsd => "budget",
                BudgetUnit::Tokens => "token budget",
            },
        }
    }
}

/// Which tokens a token limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Prompt (input) tokens.
    Prompt,
    /// Completion (output) tokens.
    Completion,
    /// Both.
    Total,
}

/// `amount` per `period`, enforced with GCRA: up to `amount` at once, refilling evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many.
    pub amount: u64,
    /// Per how long.
    pub period: Duration,
}

/// A spending cap per calendar window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The cap, in `unit`s.
    pub amount: u64,
    /// Millionths of a US dollar, or tokens.
    pub unit: BudgetUnit,
    /// The calendar window (UTC) it resets with.
    pub window: Window,
}

/// What a budget is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetUnit {
    /// Millionths of a US dollar, priced by `[[prices]]`.
    MicroUsd,
    /// Total tokens.
    Tokens,
}

/// A calendar window in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// From 00:00 UTC to the next midnight.
    Day,
    /// From the first of the month, 00:00 UTC.
    Month,
}

/// Behaviour when the shared limit store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Refuse the request (503) while the store is unreachable.
    FailClosed,
    /// Let the request through unmetered, counting it in `aigis_limit_store_errors_total`.
    FailOpen,
}

/// One `[[prices]]` entry, in US dollars per million tokens.
#[derive(Debug, Clone)]
pub struct Price {
    /// Exact model name or glob.
    pub model: String,
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of a call in millionths of a dollar, rounded up.
    pub fn micro_usd(&self, prompt: u64, completion: u64) -> u64 {
        // USD per Mtok equals micro-USD per token.
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "token counts are far below 2^52 and prices are validated non-negative"
        )]
        let cost = (prompt as f64)
            .mul_add(
                self.input_per_mtok,
                completion as f64 * self.output_per_mtok,
            )
            .ceil() as u64;
        cost
    }
}

/// How a route counts prompt tokens before the upstream reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokenizer {
    /// By model name: OpenAI models use their tiktoken encoding, others the estimate.
    #[default]
    Auto,
    /// tiktoken `o200k_base` (GPT-4o, o-series, GPT-4.1, GPT-5).
    O200k,
    /// tiktoken `cl100k_base` (GPT-4, GPT-3.5).
    Cl100k,
    /// One token per 4 bytes of text, rounded up (a cheap upper-leaning estimate).
    Estimate,
}

impl Tokenizer {
    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "o200k_base" => Self::O200k,
            "cl100k_base" => Self::Cl100k,
            "estimate" => Self::Estimate,
            _ => return None,
        })
    }
}

/// Parses `"600/min"`, `"2M/day"`, `"10/s"`, `"100/5m"`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let (amount, per) = s.split_once('/').ok_or_else(|| {
        format!("`{s}` is not a rate; write it as AMOUNT/PERIOD, e.g. \"600/min\"")
    })?;
    let amount = parse_amount(amount.trim())?;
    let period = parse_period(per.trim())?;
    if amount == 0 {
        return Err("the amount must be at least 1".into());
    }
    Ok(Rate { amount, period })
}

/// Parses `"500USD/month"`, `"20 USD/day"`, `"10M tokens/month"`.
pub fn parse_budget(s: &str) -> Result<Budget, String> {
    let hint = "write it as AMOUNT UNIT/WINDOW, e.g. \"500USD/month\" or \"10M tokens/day\"";
    let (amount, window) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a budget; {hint}"))?;
    let window = match window.trim() {
        "day" => Window::Day,
        "month" => Window::Month,
        other => return Err(format!("budget window `{other}` must be `day` or `month`")),
    };
    let amount = amount.trim();
    let (number, unit) = if let Some(n) = amount.strip_suffix("USD") {
        let usd: f64 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number of dollars; {hint}"))?;
        if !usd.is_finite() || usd <= 0.0 || usd > 1e12 {
            return Err(format!("`{n}` must be a positive number of dollars"));
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked positive and below 1e12 dollars"
        )]
        let micro = (usd * 1e6).round() as u64;
        (micro, BudgetUnit::MicroUsd)
    } else if let Some(n) = amount.strip_suffix("tokens") {
        (parse_amount(n.trim())?, BudgetUnit::Tokens)
    } else {
        return Err(format!("`{amount}` has no unit (USD or tokens); {hint}"));
    };
    if number == 0 {
        return Err("a budget must be above zero".into());
    }
    Ok(Budget {
        amount: number,
        unit,
        window,
    })
}

/// `600`, `2k`, `2M`, `1.5M`, `1G`.
fn parse_amount(s: &str) -> Result<u64, String> {
    let (digits, scale) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1e3),
        Some(b'M') => (&s[..s.len() - 1], 1e6),
        Some(b'G' | b'B') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let n: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an amount (e.g. 600, 2k, 1.5M)"))?;
    let n = n * scale;
    if !n.is_finite() || !(0.0..=1e15).contains(&n) || n.fract() != 0.0 {
        return Err(format!("`{s}` must be a whole number of at most 10^15"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked whole, non-negative and at most 1e15"
    )]
    Ok(n as u64)
}

fn parse_period(s: &str) -> Result<Duration, String> {
    let d = match s {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "minute" => Duration::from_mins(1),
        "h" | "hour" => Duration::from_hours(1),
        "d" | "day" => Duration::from_hours(24),
        other => parse_duration(other).map_err(|_| {
            format!("`{other}` is not a period; use s, min, hour, day or a duration like 5m")
        })?,
    };
    if d < Duration::from_millis(1) || d > Duration::from_hours(366 * 24) {
        return Err(format!("the period `{s}` must be between 1ms and a year"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_suffixes_and_periods() {
        let r = parse_rate("600/min").unwrap();
        assert_eq!((r.amount, r.period), (600, Duration::from_mins(1)));
        let r = parse_rate("2M/day").unwrap();
        assert_eq!((r.amount, r.period), (2_000_000, Duration::from_hours(24)));
        let r = parse_rate("1.5k/5m").unwrap();
        assert_eq!((r.amount, r.period), (1500, Duration::from_mins(5)));
        for bad in ["600", "0/min", "x/min", "10/fortnight", "1.5/min", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_parse_dollars_and_tokens() {
        let b = parse_budget("500USD/month").unwrap();
        assert_eq!(
            (b.amount, b.unit, b.window),
            (500_000_000, BudgetUnit::MicroUsd, Window::Month)
        );
        let b = parse_budget("10M tokens/day").unwrap();
        assert_eq!(
            (b.amount, b.unit, b.window),
            (10_000_000, BudgetUnit::Tokens, Window::Day)
        );
        for bad in [
            "500/month",
            "500USD",
            "500USD/week",
            "0USD/day",
            "-5USD/day",
        ] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prices_round_up_to_a_micro_dollar() {
        let p = Price {
            model: "m".into(),
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
        };
        assert_eq!(p.micro_usd(1_000_000, 0), 2_500_000);
        assert_eq!(p.micro_usd(1, 1), 13); // 12.5 rounds up
    }
}
