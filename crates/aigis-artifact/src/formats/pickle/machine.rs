//! A symbolic pickle virtual machine over the full opcode set of protocols 0–5. It executes
//! nothing: it tracks enough of the stack and memo to resolve every import (GLOBAL, INST,
//! STACK_GLOBAL from any string opcode or through the memo) and to see what is called.

use std::io;
use std::rc::Rc;

use aigis_report::Severity;

use super::catalogue;
use super::stream::{Short, Stream};
use super::text::{decode_raw_unicode_escape, decode_string_repr};
use super::value::{MAX_TRACKED_ITEMS, Obj, V};

mod effects;
mod memo;

use crate::reader::{MAX_KEPT_OPERAND, MAX_MEMO_ENTRIES, MAX_PICKLE_OPS, MAX_PICKLE_STACK};
use effects::{describe, dict_from, global_names, long_value, parse_key};
use memo::Memo;

/// One imported global.
#[derive(Debug, Clone)]
pub struct Import {
    /// Module as written in the file.
    pub module: String,
    /// Name as written (may be dotted).
    pub name: String,
    /// Offset of the opcode that imported it.
    pub offset: u64,
    /// GLOBAL, INST or STACK_GLOBAL.
    pub opcode: &'static str,
    /// Offset and opcode of the first call, if it is called.
    pub called: Option<(u64, &'static str)>,
    /// A call's result was thrown away by POP (a call made only for its side effect).
    pub discarded: bool,
}

/// Something noteworthy besides imports.
#[derive(Debug, Clone)]
pub struct Event {
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What it means.
    pub message: String,
    /// Where.
    pub offset: u64,
    /// The opcode and operands.
    pub evidence: String,
    /// About the stream's shape rather than its imports: dropped when the input never turned
    /// out to be a pickle (no STOP reached in a file without a pickle header).
    pub structural: bool,
}

/// Bytes inside the pickle that are themselves a pickle (to be scanned recursively).
#[derive(Debug)]
pub struct Nested {
    /// Offset of the operand.
    pub offset: u64,
    /// The decoded pickle bytes.
    pub bytes: Vec<u8>,
    /// raw, hex, base64, loader-argument.
    pub how: &'static str,
}

/// How one pickle ended.
#[derive(Debug)]
pub enum End {
    /// STOP reached.
    Stop,
    /// The data ended before the first opcode.
    Empty,
    /// A byte that is not an opcode, or an operand that cannot be decoded.
    Invalid(u64, String),
    /// The data ended inside the pickle.
    Truncated(u64, String),
    /// A `MAX_*` limit was hit.
    Limit(u64, String),
    /// The source failed.
    Io(io::Error),
}

/// The machine's state.
#[derive(Default)]
pub struct Machine {
    stack: Vec<V>,
    marks: Vec<Vec<V>>,
    memo: Memo,
    frame_end: Option<u64>,
    ops: u64,
    /// In a TorchScript archive (its `__torch__` classes are resolved by TorchScript).
    pub torchscript: bool,
    /// Every import, in order.
    pub imports: Vec<Import>,
    /// Everything else noteworthy.
    pub events: Vec<Event>,
    /// Nested pickles found in operands.
    pub nested: Vec<Nested>,
    /// The last PROTO operand seen.
    pub proto: Option<u8>,
    /// Skips joblib's in-stream array bytes as `joblib.load` does; `false` runs them as
    /// opcodes, as `pickle.load` does.
    joblib_layout: bool,
    /// joblib arrays skipped: from the first, `joblib.load` and `pickle.load` read different
    /// opcodes.
    pub joblib_arrays: usize,
}

enum Step {
    Go,
    Stop,
}

impl Machine {
    /// A machine; `torchscript` allows TorchScript's `__torch__` classes.
    pub fn new(torchscript: bool) -> Self {
        Self {
            torchscript,
            joblib_layout: true,
            ..Self::default()
        }
    }

    /// A machine that reads the bytes as `pickle.load` does: joblib's raw array bytes are
    /// opcodes (object arrays are still read as separate pickles).
    pub fn as_pickle_load(torchscript: bool) -> Self {
        Self {
            torchscript,
            ..Self::default()
        }
    }

    /// Runs one pickle (up to and including STOP) from the stream's position. The memo is kept
    /// across calls, as one `Unpickler` keeps it across `load()` calls.
    pub fn run_one(&mut self, s: &mut Stream) -> End {
        self.stack.clear();
        self.marks.clear();
        self.frame_end = None;
        let mut first = true;
        loop {
            let at = s.pos();
            let op = match s.byte() {
                Ok(Some(op)) => op,
                Ok(None) if first => return End::Empty,
                Ok(None) => return End::Truncated(at, "the data ends before STOP".into()),
                Err(e) => return short(at, e),
            };
            first = false;
            self.ops += 1;
            if self.ops > MAX_PICKLE_OPS {
                return End::Limit(at, format!("more than {MAX_PICKLE_OPS} pickle opcodes"));
            }
            if self.stack.len() + self.marks.len() > MAX_PICKLE_STACK {
                return End::Limit(at, format!("pickle stack deeper than {MAX_PICKLE_STACK}"));
            }
            match self.step(op, at, s) {
                Ok(Step::Go) => {}
                Ok(Step::Stop) => return End::Stop,
                Err(Fail::Short(e)) => return short(at, e),
                Err(Fail::Invalid(m)) => return End::Invalid(at, m),
                Err(Fail::Limit(m)) => return End::Limit(at, m),
            }
        }
    }

    fn pop(&mut self) -> V {
        self.stack.pop().unwrap_or(V::Other)
    }

    fn top(&self) -> V {
        self.stack.last().cloned().unwrap_or(V::Other)
    }

    fn pop_mark(&mut self) -> Vec<V> {
        let items = std::mem::take(&mut self.stack);
        self.stack = self.marks.pop().unwrap_or_default();
        items
    }

    fn event(
        &mut self,
        rule: &'static str,
        severity: Severity,
        offset: u64,
        message: String,
        evidence: String,
        structural: bool,
    ) {
        self.events.push(Event {
            rule,
            severity,
            message,
            offset,
            evidence,
            structural,
        });
    }

    fn import(&mut self, module: String, name: String, offset: u64, opcode: &'static str) -> usize {
        self.imports.push(Import {
            module,
            name,
            offset,
            opcode,
            called: None,
            discarded: false,
        });
        self.imports.len() - 1
    }

    fn memo_put(&mut self, key: u64, at: u64) -> Result<(), Fail> {
        if self.memo.len() >= MAX_MEMO_ENTRIES && self.memo.get(key).is_none() {
            self.event(
                "AIG-PICKLE-RESOURCE",
                Severity::Medium,
                at,
                format!("the pickle defines more than {MAX_MEMO_ENTRIES} memo entries (memory exhaustion pattern)"),
                "PUT".into(),
                true,
            );
            return Err(Fail::Limit(format!(
                "more than {MAX_MEMO_ENTRIES} memo entries"
            )));
        }
        let v = self.top();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64, at: u64) {
        match self.memo.get(key) {
            Some(v) => self.stack.push(v.clone()),
            None => {
                // The real unpickler stops here with a KeyError; the opcodes before still ran.
                self.event(
                    "AIG-PICKLE-MEMO",
                    Severity::Medium,
                    at,
                    format!("memo key {key} is read before it is written (the load fails here; scanners that crash on it miss what came before)"),
                    format!("GET {key}"),
                    true,
                );
                self.stack.push(V::Unresolved);
            }
        }
    }

    /// A call of `callee` with `args` by `opcode` at `at`; returns the result value.
    fn call(&mut self, callee: &V, args: V, at: u64, opcode: &'static str) -> V {
        let import = match callee {
            V::Global(i) => Some(*i),
            _ => None,
        };
        self.mark_called(callee, at, opcode);
        if let Some(imp) = import.and_then(|i| self.imports.get(i)) {
            let loader = catalogue::is_loader(&imp.module, &imp.name);
            // Allowlisted callables that call what they are given (`func(*args)`) call an
            // argument as surely as REDUCE does.
            let passed_on = catalogue::called_arguments(&imp.module, &imp.name);
            if loader {
                self.loader_args(&args, at);
            }
            for &k in passed_on {
                if let Some(arg @ (V::Global(_) | V::Called(_) | V::Unresolved)) =
                    args.item(k).cloned()
                {
                    self.mark_called(&arg, at, opcode);
                }
            }
        }
        V::Called(Rc::new(Obj {
            import,
            args,
            state: None.into(),
        }))
    }

    /// Records that `callee` is called: an import is marked; anything but a plain value
    /// (another call's result, an unresolved global) is an indirect call.
    fn mark_called(&mut self, callee: &V, at: u64, opcode: &'static str) {
        let what = match callee {
            V::Global(i) => {
                if let Some(imp) = self.imports.get_mut(*i) {
                    imp.called.get_or_insert((at, opcode));
                }
                return;
            }
            V::Called(o) => match o.import.and_then(|i| self.imports.get(i)) {
                Some(imp) => format!("the result of calling {}.{}", imp.module, imp.name),
                None => "the result of another call".to_owned(),
            },
            V::Unresolved => "a global that cannot be resolved".to_owned(),
            _ => "a value that is not an imported callable".to_owned(),
        };
        self.event(
            "AIG-PICKLE-INDIRECT-CALL",
            Severity::High,
            at,
            format!("{opcode} calls {what} (getattr/attrgetter-style indirection hides the real callable)"),
            opcode.to_owned(),
            false,
        );
    }

    fn loader_args(&mut self, args: &V, at: u64) {
        let V::Tuple(items) = args else { return };
        for item in items.iter() {
            let bytes = match item {
                V::Bytes(b) => b.to_vec(),
                V::Str(s) => s
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect(),
                _ => continue,
            };
            self.nested.push(Nested {
                offset: at,
                bytes,
                how: "argument of a pickle loader",
            });
        }
    }

    /// Checks a bytes or text operand for an embedded pickle (raw, hex or base64).
    fn operand(&mut self, bytes: &[u8], at: u64) {
        if let Some((decoded, how)) = super::nested::embedded_pickle(bytes) {
            self.nested.push(Nested {
                offset: at,
                bytes: decoded,
                how,
            });
        }
    }

    fn push_bytes(&mut self, s: &mut Stream, n: u64, at: u64, what: &str) -> Result<(), Fail> {
        if n > MAX_KEPT_OPERAND {
            s.skip(n, what)?;
            self.stack.push(V::Other);
            return Ok(());
        }
        let b = s.take(n, what)?;
        self.operand(&b, at);
        self.stack.push(V::Bytes(b.into()));
        Ok(())
    }

    fn push_text(&mut self, s: &mut Stream, n: u64, at: u64, what: &str) -> Result<(), Fail> {
        if n > MAX_KEPT_OPERAND {
            s.skip(n, what)?;
            self.stack.push(V::Other);
            return Ok(());
        }
        let b = s.take(n, what)?;
        self.operand(&b, at);
        let text = String::from_utf8_lossy(&b);
        self.stack.push(V::Str(text.as_ref().into()));
        Ok(())
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one arm per opcode reads best as one match"
    )]
    fn step(&mut self, op: u8, at: u64, s: &mut Stream) -> Result<Step, Fail> {
        match op {
            b'(' => {
                let cur = std::mem::take(&mut self.stack);
                self.marks.push(cur);
            }
            b'.' => return Ok(Step::Stop),
            b'0' => {
                let v = self.pop();
                if let V::Called(o) = v
                    && let Some(imp) = o.import.and_then(|i| self.imports.get_mut(i))
                {
                    imp.discarded = true;
                }
            }
            b'1' | b'e' | 0x90 => {
                // POP_MARK, APPENDS, ADDITEMS: list and set contents are not tracked.
                self.pop_mark();
            }
            b'2' => {
                let v = self.top();
                self.stack.push(v);
            }
            b'F' => {
                s.line("FLOAT")?;
                self.stack.push(V::Other);
            }
            b'I' | b'L' => {
                let line = s.line("INT")?;
                let text = String::from_utf8_lossy(&line);
                let t = text.trim().trim_end_matches('L');
                let v = match t {
                    "01" => V::Int(1),
                    "00" => V::Int(0),
                    _ => t.parse().map_or(V::Other, V::Int),
                };
                self.stack.push(v);
            }
            b'J' => {
                let n = s.uint(4, "BININT")?;
                let v = i64::from(i32::from_le_bytes(
                    u32::try_from(n).unwrap_or(0).to_le_bytes(),
                ));
                self.stack.push(V::Int(v));
            }
            b'K' => {
                let n = s.uint(1, "BININT1")?;
                self.stack.push(V::Int(i64::try_from(n).unwrap_or(0)));
            }
            b'M' => {
                let n = s.uint(2, "BININT2")?;
                self.stack.push(V::Int(i64::try_from(n).unwrap_or(0)));
            }
            b'N' => self.stack.push(V::None),
            0x88 => self.stack.push(V::Int(1)),
            0x89 => self.stack.push(V::Int(0)),
            b'G' => {
                s.take(8, "BINFLOAT")?;
                self.stack.push(V::Other);
            }
            0x8a => {
                let n = s.uint(1, "LONG1")?;
                let b = s.take(n, "LONG1")?;
                self.stack.push(long_value(&b));
            }
            0x8b => {
                let n = s.uint(4, "LONG4")?;
                if n > MAX_KEPT_OPERAND {
                    s.skip(n, "LONG4")?;
                    self.stack.push(V::Other);
                } else {
                    let b = s.take(n, "LONG4")?;
                    self.stack.push(long_value(&b));
                }
            }
            b'P' => {
                let line = s.line("PERSID")?;
                self.event(
                    "AIG-PICKLE-PERSID",
                    Severity::Medium,
                    at,
                    "text persistent id: the loading application's persistent_load decides what it resolves to".into(),
                    format!("PERSID {}", String::from_utf8_lossy(&line)),
                    true,
                );
                self.stack.push(V::Other);
            }
            b'Q' => {
                let pid = self.pop();
                self.persistent_id(&pid, at);
                self.stack.push(V::Other);
            }
            b'R' => {
                let args = self.pop();
                let callee = self.pop();
                let v = self.call(&callee, args, at, "REDUCE");
                self.stack.push(v);
            }
            b'S' => {
                let line = s.line("STRING")?;
                let b = decode_string_repr(&line)
                    .ok_or_else(|| Fail::Invalid("STRING operand is not a quoted string".into()))?;
                self.operand(&b, at);
                let text: String = b.iter().map(|&c| char::from(c)).collect();
                self.stack.push(V::Str(text.into()));
            }
            b'T' => {
                let n = s.uint(4, "BINSTRING")?;
                self.push_text(s, n, at, "BINSTRING")?;
            }
            b'U' => {
                let n = s.uint(1, "SHORT_BINSTRING")?;
                self.push_text(s, n, at, "SHORT_BINSTRING")?;
            }
            b'V' => {
                let line = s.line("UNICODE")?;
                self.operand(&line, at);
                self.stack
                    .push(V::Str(decode_raw_unicode_escape(&line).into()));
            }
            b'X' => {
                let n = s.uint(4, "BINUNICODE")?;
                self.push_text(s, n, at, "BINUNICODE")?;
            }
            0x8c => {
                let n = s.uint(1, "SHORT_BINUNICODE")?;
                self.push_text(s, n, at, "SHORT_BINUNICODE")?;
            }
            0x8d => {
                let n = s.uint(8, "BINUNICODE8")?;
                self.push_text(s, n, at, "BINUNICODE8")?;
            }
            b'B' => {
                let n = s.uint(4, "BINBYTES")?;
                self.push_bytes(s, n, at, "BINBYTES")?;
            }
            b'C' => {
                let n = s.uint(1, "SHORT_BINBYTES")?;
                self.push_bytes(s, n, at, "SHORT_BINBYTES")?;
            }
            0x8e => {
                let n = s.uint(8, "BINBYTES8")?;
                self.push_bytes(s, n, at, "BINBYTES8")?;
            }
            0x96 => {
                let n = s.uint(8, "BYTEARRAY8")?;
                self.push_bytes(s, n, at, "BYTEARRAY8")?;
            }
            0x97 => {
                self.event(
                    "AIG-PICKLE-OUT-OF-BAND",
                    Severity::Low,
                    at,
                    "out-of-band buffer (protocol 5): its bytes are supplied by the loader, not the file".into(),
                    "NEXT_BUFFER".into(),
                    true,
                );
                self.stack.push(V::Other);
            }
            0x98 => {}
            b'a' => {
                self.pop();
            }
            b'b' => {
                let state = self.pop();
                let obj = self.top();
                self.build(&obj, state, at, s)?;
            }
            b'c' => {
                let module = s.line("GLOBAL module")?;
                let name = s.line("GLOBAL name")?;
                let (module, name) = global_names(&module, &name)?;
                let i = self.import(module, name, at, "GLOBAL");
                self.stack.push(V::Global(i));
            }
            b'i' => {
                let module = s.line("INST module")?;
                let name = s.line("INST name")?;
                let (module, name) = global_names(&module, &name)?;
                let i = self.import(module, name, at, "INST");
                let args = V::tuple(self.pop_mark());
                let v = self.call(&V::Global(i), args, at, "INST");
                self.stack.push(v);
            }
            0x93 => {
                let name = self.pop();
                let module = self.pop();
                match (module.as_str(), name.as_str()) {
                    (Some(m), Some(n)) => {
                        let i = self.import(m.to_owned(), n.to_owned(), at, "STACK_GLOBAL");
                        self.stack.push(V::Global(i));
                    }
                    _ => {
                        self.event(
                            "AIG-PICKLE-UNRESOLVED-GLOBAL",
                            Severity::High,
                            at,
                            "STACK_GLOBAL operands are not both strings (type confusion or a memo trick): the imported name cannot be known statically".into(),
                            format!("STACK_GLOBAL {} {}", describe(&module), describe(&name)),
                            false,
                        );
                        self.stack.push(V::Unresolved);
                    }
                }
            }
            0x82..=0x84 => {
                let n = match op {
                    0x82 => 1,
                    0x83 => 2,
                    _ => 4,
                };
                let code = s.uint(n, "EXT")?;
                self.event(
                    "AIG-PICKLE-EXT",
                    Severity::High,
                    at,
                    format!("extension code {code} imports whatever copyreg's extension registry maps it to in the loading process: the callable cannot be checked"),
                    format!("EXT{n} {code}"),
                    false,
                );
                self.stack.push(V::Unresolved);
            }
            b'd' => {
                let items = self.pop_mark();
                self.stack.push(dict_from(items));
            }
            b'}' => self.stack.push(V::Dict(Rc::default())),
            b'l' | 0x91 => {
                self.pop_mark();
                self.stack.push(V::Other);
            }
            b']' | 0x8f => self.stack.push(V::Other),
            b's' => {
                let v = self.pop();
                let k = self.pop();
                if let Some(V::Dict(d)) = self.stack.last() {
                    let mut d = d.borrow_mut();
                    if d.len() < MAX_TRACKED_ITEMS {
                        d.push((k, v));
                    }
                }
            }
            b'u' => {
                let items = self.pop_mark();
                if let Some(V::Dict(d)) = self.stack.last() {
                    let mut d = d.borrow_mut();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        if d.len() < MAX_TRACKED_ITEMS {
                            d.push((k, v));
                        }
                    }
                }
            }
            b'g' => {
                let line = s.line("GET")?;
                let key = parse_key(&line)?;
                self.memo_get(key, at);
            }
            b'h' => {
                let key = s.uint(1, "BINGET")?;
                self.memo_get(key, at);
            }
            b'j' => {
                let key = s.uint(4, "LONG_BINGET")?;
                self.memo_get(key, at);
            }
            b'p' => {
                let line = s.line("PUT")?;
                let key = parse_key(&line)?;
                self.memo_put(key, at)?;
            }
            b'q' => {
                let key = s.uint(1, "BINPUT")?;
                self.memo_put(key, at)?;
            }
            b'r' => {
                let key = s.uint(4, "LONG_BINPUT")?;
                self.memo_put(key, at)?;
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key, at)?;
            }
            b't' => {
                let items = self.pop_mark();
                self.stack.push(V::tuple(items));
            }
            b')' => self.stack.push(V::tuple(Vec::new())),
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at_least = self.stack.len().saturating_sub(n);
                let items = self.stack.split_off(at_least);
                self.stack.push(V::tuple(items));
            }
            b'o' => {
                let mut items = self.pop_mark();
                let callee = if items.is_empty() {
                    V::Other
                } else {
                    items.remove(0)
                };
                let v = self.call(&callee, V::tuple(items), at, "OBJ");
                self.stack.push(v);
            }
            0x81 => {
                let args = self.pop();
                let cls = self.pop();
                let v = self.call(&cls, args, at, "NEWOBJ");
                self.stack.push(v);
            }
            0x92 => {
                let _kwargs = self.pop();
                let args = self.pop();
                let cls = self.pop();
                let v = self.call(&cls, args, at, "NEWOBJ_EX");
                self.stack.push(v);
            }
            0x80 => {
                let p = s.uint(1, "PROTO")?;
                self.proto = u8::try_from(p).ok();
                if p > 5 {
                    return Err(Fail::Invalid(format!("unsupported pickle protocol {p}")));
                }
            }
            0x95 => {
                let n = s.uint(8, "FRAME")?;
                if let Some(end) = self.frame_end
                    && s.pos() - 9 < end
                {
                    self.event(
                            "AIG-PICKLE-FRAME",
                            Severity::Medium,
                            at,
                            format!("a new FRAME starts {} bytes before the previous one ends (the standard loader refuses this; lenient readers see different opcodes)", end - (s.pos() - 9)),
                            format!("FRAME {n}"),
                            true,
                        );
                }
                if n > s.remaining() {
                    self.event(
                        "AIG-PICKLE-FRAME",
                        Severity::Medium,
                        at,
                        format!("FRAME declares {n} bytes but only {} remain", s.remaining()),
                        format!("FRAME {n}"),
                        true,
                    );
                }
                self.frame_end = s.pos().checked_add(n);
            }
            other => {
                return Err(Fail::Invalid(format!(
                    "byte 0x{other:02x} is not a pickle opcode"
                )));
            }
        }
        Ok(Step::Go)
    }
}

/// Why a step failed.
pub enum Fail {
    /// The data ended or could not be read.
    Short(Short),
    /// Not a valid opcode or operand.
    Invalid(String),
    /// A `MAX_*` limit.
    Limit(String),
}

impl From<Short> for Fail {
    fn from(s: Short) -> Self {
        Fail::Short(s)
    }
}

fn short(at: u64, e: Short) -> End {
    match e {
        Short::Truncated(m) => End::Truncated(at, m),
        Short::Io(e) => End::Io(e),
    }
}
