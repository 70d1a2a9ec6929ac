//! Pickle analysis (protocols 0–5): a symbolic stack/memo machine ([`machine`]) records every
//! import and call; the allowlist-first [`catalogue`] turns them into findings. Concatenated
//! pickles, garbage after STOP and truncated streams are handled (findings before a break
//! still count), and pickles nested in operands are scanned recursively.

pub mod catalogue;
pub mod compat;
pub mod joblib;
pub mod machine;
pub mod nested;
pub mod stream;
pub mod text;
pub mod value;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;

use aigis_report::{Evidence, Finding, Severity};

use crate::reader::{MAX_DEPTH, MAX_PICKLES_PER_STREAM};
use crate::scan::Ctx;
use crate::{Input, Origin, Outcome};
use catalogue::Verdict;
use machine::{End, Machine};
use stream::Stream;

/// Remediation for dangerous and unknown imports.
const HELP_DANGEROUS: &str = "Do not load this file: unpickling runs the named callable. If \
     you need the weights, get them from a trusted source as safetensors, or load with \
     torch.load(weights_only=True) in an isolated sandbox.";
const HELP_UNKNOWN: &str = "Unpickling imports (and may call) this name. Check that the module \
     is one you trust; if it is, allow it explicitly (torch.serialization.add_safe_globals, or \
     a restricted Unpickler.find_class) rather than loading with full pickle.";

/// How a pickle is being read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Inside a TorchScript archive: `__torch__` classes are TorchScript's own.
    pub torchscript: bool,
    /// Known to be a pickle by context (a `data.pkl` member), so structural problems are
    /// reported even without a protocol header.
    pub known_pickle: bool,
    /// Raw data normally follows the pickles (legacy PyTorch storages): no trailing-data note.
    pub trailing_ok: bool,
}

/// Protocol 2+ pickles start with PROTO; protocols 0 and 1 have no header, so any input is
/// still tried as a pickle by the scanner when nothing else matches.
pub fn sniff(prefix: &[u8]) -> bool {
    prefix.first() == Some(&0x80) && prefix.get(1).is_some_and(|p| (2..=5).contains(p))
}

/// Scans a pickle stream with the default context.
pub fn scan(input: &mut Input) -> Outcome {
    scan_with(&Ctx::default(), input, Options::default())
}

/// What reading bytes as a pickle showed, beside the findings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// A STOP or PROTO was reached, or the context says it is a pickle.
    pub is_pickle: bool,
    /// A limit stopped the reading.
    pub limited: bool,
}

/// Scans a pickle stream (one or more concatenated pickles).
pub fn scan_with(ctx: &Ctx, input: &mut Input, opts: Options) -> Outcome {
    scan_shaped(ctx, input, opts).0
}

/// How a stream of concatenated pickles was read.
#[derive(Default)]
struct Run {
    stops: usize,
    /// Structural notes (offset, message): data after STOP, a broken stream.
    notes: Vec<(u64, String)>,
    /// Why reading stopped before the end, when a limit or the source stopped it.
    stopped: Vec<String>,
    limited: bool,
}

fn run_stream(m: &mut Machine, s: &mut Stream, opts: Options) -> Run {
    let mut run = Run::default();
    loop {
        if run.stops >= MAX_PICKLES_PER_STREAM {
            run.stopped.push(format!(
                "more than {MAX_PICKLES_PER_STREAM} concatenated pickles"
            ));
            run.limited = true;
            break;
        }
        let start = s.pos();
        match m.run_one(s) {
            End::Stop => {
                run.stops += 1;
                if s.remaining() == 0 {
                    break;
                }
            }
            End::Empty => break,
            End::Invalid(at, msg) | End::Truncated(at, msg) => {
                if run.stops > 0 && opts.trailing_ok {
                    // Raw storage bytes follow the pickles of a legacy checkpoint.
                } else if at == start && run.stops > 0 {
                    run.notes.push((
                        at,
                        format!(
                            "{} bytes of data follow the last STOP (not a pickle: {msg})",
                            s.len() - at
                        ),
                    ));
                } else if run.stops > 0 || m.proto.is_some() || opts.known_pickle {
                    run.notes.push((at, format!("the pickle stream breaks at offset {at}: {msg}; the standard loader fails here, after running everything before it")));
                }
                break;
            }
            End::Limit(at, msg) => {
                run.stopped.push(format!("{msg} (at offset {at})"));
                run.limited = true;
                break;
            }
            End::Io(e) => {
                run.stopped.push(format!("read error: {e}"));
                break;
            }
        }
    }
    run
}

/// joblib skips its arrays' bytes, but `pickle.load` of the same file runs them as opcodes.
/// When the stream held joblib arrays it is read again that way, and what that reading
/// imports or calls is added to `m`.
fn read_as_pickle_load(m: &mut Machine, input: &mut Input, opts: Options) -> Run {
    if m.joblib_arrays == 0 {
        return Run::default();
    }
    let mut s = match Stream::new(input.source, input.len, 0) {
        Ok(s) => s,
        Err(e) => {
            return Run {
                stopped: vec![format!("cannot read: {e}")],
                ..Run::default()
            };
        }
    };
    let mut plain = Machine::as_pickle_load(opts.torchscript);
    let mut run = run_stream(&mut plain, &mut s, opts);
    // Up to the first array both readings are the same: keep one copy of what they share.
    m.imports.append(&mut plain.imports);
    let seen: HashSet<(&str, u64)> = m.events.iter().map(|e| (e.rule, e.offset)).collect();
    let fresh: Vec<_> = plain
        .events
        .into_iter()
        .filter(|e| !e.structural && !seen.contains(&(e.rule, e.offset)))
        .collect();
    m.events.extend(fresh);
    let seen: HashSet<u64> = m.nested.iter().map(|n| n.offset).collect();
    m.nested.extend(
        plain
            .nested
            .into_iter()
            .filter(|n| !seen.contains(&n.offset)),
    );
    for reason in &mut run.stopped {
        *reason = format!("read as pickle.load reads it (joblib array bytes as opcodes): {reason}");
    }
    run
}

#[allow(
    clippy::too_many_lines,
    reason = "the reporting of one stream reads best in order"
)]
/// Scans a pickle stream and says what the reading showed.
pub fn scan_shaped(ctx: &Ctx, input: &mut Input, opts: Options) -> (Outcome, Shape) {
    let mut out = Outcome::default();
    let origin = input.origin.clone();
    let mut shape = Shape::default();
    let mut m = Machine::new(opts.torchscript);
    let run = match Stream::new(input.source, input.len, 0) {
        Ok(mut s) => run_stream(&mut m, &mut s, opts),
        Err(e) => {
            out.not_scanned
                .push(origin.not_scanned(format!("cannot read: {e}")));
            return (out, shape);
        }
    };
    let plain = read_as_pickle_load(&mut m, input, opts);
    for reason in run.stopped.iter().chain(&plain.stopped) {
        out.not_scanned.push(origin.not_scanned(reason.clone()));
    }
    shape.limited = run.limited || plain.limited;
    let is_pickle = run.stops > 0 || m.proto.is_some() || opts.known_pickle;
    shape.is_pickle = is_pickle;
    let notes = run.notes;
    report_imports(&m, &origin, opts, &mut out);
    for e in &m.events {
        if e.structural && !is_pickle {
            continue;
        }
        out.findings.push(
            Finding::new(e.rule, e.severity, e.message.clone(), origin.at(e.offset))
                .with_evidence(Evidence::text(e.evidence.clone()))
                .with_help(HELP_DANGEROUS)
                .with_tag("pickle"),
        );
    }
    if is_pickle {
        for (at, msg) in notes {
            out.findings.push(
                Finding::new("AIG-PICKLE-MALFORMED", Severity::Low, msg, origin.at(at))
                    .with_help("A broken pickle still runs every opcode before the break; the findings above it apply.")
                    .with_tag("pickle"),
            );
        }
    }
    for n in &m.nested {
        let child = origin.child(&format!("pickle@{}", n.offset));
        if ctx.depth >= MAX_DEPTH {
            out.not_scanned
                .push(child.not_scanned(format!("nested deeper than {MAX_DEPTH} levels")));
            continue;
        }
        let inner = scan_bytes(&ctx.deeper(), &n.bytes, child.clone(), Options::default());
        if !inner.findings.is_empty() {
            out.findings.push(
                Finding::new(
                    "AIG-PICKLE-NESTED",
                    Severity::High,
                    format!("a {} inside the pickle carries its own imports (a payload for pickle.loads/torch.load)", n.how),
                    origin.at(n.offset),
                )
                .with_evidence(Evidence::text(format!("{} bytes, findings listed under {}", n.bytes.len(), child.member.clone().unwrap_or_default())))
                .with_help(HELP_DANGEROUS)
                .with_tag("pickle"),
            );
        }
        out.merge(inner);
    }
    (out, shape)
}

/// Scans in-memory pickle bytes.
pub fn scan_bytes(ctx: &Ctx, bytes: &[u8], origin: Origin, opts: Options) -> Outcome {
    let mut cur = Cursor::new(bytes);
    let mut input = Input {
        source: &mut cur,
        len: bytes.len() as u64,
        origin,
    };
    scan_with(ctx, &mut input, opts)
}

/// First offset, opcode, first call and "result discarded" of one distinct import.
type Seen = (u64, &'static str, Option<(u64, &'static str)>, bool);

fn report_imports(m: &Machine, origin: &Origin, opts: Options, out: &mut Outcome) {
    // One finding per distinct name: a checkpoint may import the same global thousands of times.
    let mut seen: BTreeMap<(&str, &str), Seen> = BTreeMap::new();
    for imp in &m.imports {
        let e = seen
            .entry((imp.module.as_str(), imp.name.as_str()))
            .or_insert((imp.offset, imp.opcode, None, false));
        if e.2.is_none() {
            e.2 = imp.called;
        }
        e.3 |= imp.discarded;
    }
    for ((module, name), (offset, opcode, called, discarded)) in seen {
        let evidence = match called {
            Some((at, op)) => format!("{opcode} {module} {name} → called by {op} at offset {at}"),
            None => format!("{opcode} {module} {name}"),
        };
        let finding = match catalogue::classify(module, name, opts.torchscript) {
            Verdict::Safe if discarded => Some(Finding::new(
                "AIG-PICKLE-DISCARDED-CALL",
                Severity::Medium,
                format!(
                    "{module}.{name} is called and its result thrown away (POP): a call made only for its side effect"
                ),
                origin.at(offset),
            )),
            Verdict::Safe => None,
            Verdict::Dangerous(why) => Some(Finding::new(
                "AIG-PICKLE-DANGEROUS-GLOBAL",
                Severity::Critical,
                format!(
                    "pickle {} {module}.{name}: {why}",
                    if called.is_some() { "calls" } else { "imports" }
                ),
                origin.at(offset),
            )),
            Verdict::Unknown => {
                let dotted = if name.contains('.') {
                    " (a dotted attribute chain)"
                } else {
                    ""
                };
                let (sev, rule, verb) = if called.is_some() || name.contains('.') {
                    (Severity::High, "AIG-PICKLE-UNKNOWN-CALL", "calls")
                } else {
                    (Severity::Medium, "AIG-PICKLE-UNKNOWN-GLOBAL", "imports")
                };
                Some(Finding::new(
                    rule,
                    sev,
                    format!(
                        "pickle {verb} {module}.{name}{dotted}, which is not on the allowlist of names normal model files use; importing module {module} runs its code"
                    ),
                    origin.at(offset),
                ))
            }
        };
        if let Some(f) = finding {
            let help = if f.severity() == Severity::Critical {
                HELP_DANGEROUS
            } else {
                HELP_UNKNOWN
            };
            out.findings.push(
                f.with_evidence(Evidence::text(evidence))
                    .with_help(help)
                    .with_tag("pickle"),
            );
        }
    }
}
