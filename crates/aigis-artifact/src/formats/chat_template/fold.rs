//! Constant folding for split names: enough of Jinja's value model (strings, integers, lists)
//! and of its operators and filters to rebuild `'__cla' ~ 'ss__'` and friends.

use minijinja::machinery::ast;

/// A folded constant: enough of Jinja's value model to rebuild split names.
#[derive(Debug, Clone)]
pub(super) enum Folded {
    Str(String),
    Int(i64),
    List(Vec<Folded>),
}

impl Folded {
    pub(super) fn into_str(self) -> Option<String> {
        match self {
            Folded::Str(s) => Some(s),
            Folded::Int(i) => Some(i.to_string()),
            Folded::List(_) => None,
        }
    }
}

pub(super) fn fold_binop(op: ast::BinOpKind, left: Folded, right: Folded) -> Option<Folded> {
    use ast::BinOpKind as B;
    let cap = |s: String| (s.len() <= 4096).then_some(Folded::Str(s));
    match (op, left, right) {
        (B::Concat, l, r) => cap(l.into_str()? + &r.into_str()?),
        (B::Add, Folded::Str(l), Folded::Str(r)) => cap(l + &r),
        (B::Add, Folded::Int(l), Folded::Int(r)) => l.checked_add(r).map(Folded::Int),
        (B::Mul, Folded::Str(s), Folded::Int(n)) | (B::Mul, Folded::Int(n), Folded::Str(s)) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| n.saturating_mul(s.len()) <= 4096)?;
            Some(Folded::Str(s.repeat(n)))
        }
        _ => None,
    }
}

pub(super) fn fold_filter(name: &str, value: Folded, args: &[Folded]) -> Option<Folded> {
    match apply_filter(name, value, args)? {
        Folded::Str(s) if s.len() > 4096 => None,
        folded => Some(folded),
    }
}

fn apply_filter(name: &str, value: Folded, args: &[Folded]) -> Option<Folded> {
    let text = |f: &Folded| f.clone().into_str();
    Some(match (name, value) {
        ("join", Folded::List(items)) => {
            let sep = args.first().and_then(text).unwrap_or_default();
            let parts: Option<Vec<String>> = items.into_iter().map(Folded::into_str).collect();
            Folded::Str(parts?.join(&sep))
        }
        ("reverse", Folded::Str(s)) => Folded::Str(s.chars().rev().collect()),
        ("lower", Folded::Str(s)) => Folded::Str(s.to_lowercase()),
        ("upper", Folded::Str(s)) => Folded::Str(s.to_uppercase()),
        ("string", v) => Folded::Str(v.into_str()?),
        ("trim", Folded::Str(s)) => Folded::Str(s.trim().to_owned()),
        ("replace", Folded::Str(s)) => {
            let from = args.first().and_then(text)?;
            let to = args.get(1).and_then(text)?;
            if from.is_empty() {
                return None;
            }
            Folded::Str(s.replace(&from, &to))
        }
        ("format", Folded::Str(s)) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            let mut args = args.iter();
            while let Some(i) = rest.find("%s") {
                out.push_str(&rest[..i]);
                out.push_str(&args.next().and_then(text)?);
                rest = &rest[i + 2..];
            }
            out.push_str(rest);
            Folded::Str(out)
        }
        _ => return None,
    })
}
