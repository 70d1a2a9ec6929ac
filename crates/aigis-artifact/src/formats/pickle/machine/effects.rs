//! What BUILD and BINPERSID mean for the analysis (module rebinding, PyTorch storages, joblib's
//! in-stream arrays), and the operand helpers of the opcode loop.

use std::rc::Rc;

use aigis_report::Severity;

use super::{Fail, Machine};
use crate::formats::pickle::catalogue::{self, Verdict};
use crate::formats::pickle::machine::End;
use crate::formats::pickle::stream::{Short, Stream};
use crate::formats::pickle::text::valid_dotted;
use crate::formats::pickle::value::{MAX_TRACKED_ITEMS, Obj, V};

impl Machine {
    pub(super) fn persistent_id(&mut self, pid: &V, at: u64) {
        let tag = pid.item(0).and_then(V::as_str);
        let class = pid.item(1);
        if tag == Some("storage")
            && let Some(V::Global(i)) = class
            && let Some(imp) = self.imports.get(*i)
            && catalogue::classify(&imp.module, &imp.name, false) == Verdict::Safe
        {
            return;
        }
        let what = match tag {
            Some("module") => "a legacy torch.save of a whole module: the persistent id carries the module's Python source".to_owned(),
            Some(t) => format!("persistent id tagged `{t}` is not PyTorch's ('storage', <storage class>, …)"),
            None => "persistent id is not PyTorch's ('storage', <storage class>, …) tuple".to_owned(),
        };
        self.event(
            "AIG-PICKLE-PERSID",
            Severity::Medium,
            at,
            format!("{what}: the loading application's persistent_load decides what it becomes"),
            format!("BINPERSID {}", describe(pid)),
            true,
        );
    }

    pub(super) fn build(&mut self, obj: &V, state: V, at: u64, s: &mut Stream) -> Result<(), Fail> {
        match obj {
            V::Global(i) => {
                let name = self
                    .imports
                    .get(*i)
                    .map(|imp| format!("{}.{}", imp.module, imp.name))
                    .unwrap_or_default();
                self.event(
                    "AIG-PICKLE-BUILD-GLOBAL",
                    Severity::Critical,
                    at,
                    format!("BUILD sets attributes on the module or class {name} itself: it can rebind names that an allowlist trusts (sys.modules tampering)"),
                    format!("BUILD on {name}"),
                    false,
                );
            }
            V::Called(o) => {
                *o.state.borrow_mut() = Some(state);
                let wrapper = o
                    .import
                    .and_then(|i| self.imports.get(i))
                    .is_some_and(|imp| catalogue::is_joblib_wrapper(&imp.module, &imp.name));
                if wrapper {
                    let o = Rc::clone(o);
                    self.joblib_array(&o, at, s)?;
                }
            }
            V::Unresolved => {
                self.event(
                    "AIG-PICKLE-BUILD-GLOBAL",
                    Severity::High,
                    at,
                    "BUILD sets attributes on an object whose origin cannot be resolved".into(),
                    "BUILD".into(),
                    false,
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// joblib writes each array's raw bytes (or, for object arrays, a separate pickle) right
    /// after the BUILD of its `NumpyArrayWrapper`; the pickle resumes after them.
    fn joblib_array(&mut self, wrapper: &Obj, at: u64, s: &mut Stream) -> Result<(), Fail> {
        let state = wrapper.state.borrow().clone().unwrap_or(V::Other);
        let layout = crate::formats::pickle::joblib::ArrayLayout::from_state(&state);
        let Some(layout) = layout else {
            return Err(Fail::Limit(
                "joblib array header (dtype/shape) could not be read, so where the pickle resumes is unknown".into(),
            ));
        };
        if layout.allow_mmap {
            let pad = s.uint(1, "joblib alignment padding length")?;
            s.skip(pad, "joblib alignment padding")?;
        }
        if layout.object {
            let mut sub = Machine::new(self.torchscript);
            let end = sub.run_one(s);
            self.imports.append(&mut sub.imports);
            self.events.append(&mut sub.events);
            self.nested.append(&mut sub.nested);
            self.ops += sub.ops;
            return match end {
                End::Stop => Ok(()),
                End::Limit(_, m) => Err(Fail::Limit(m)),
                End::Io(e) => Err(Fail::Short(Short::Io(e))),
                End::Empty | End::Truncated(..) => Err(Fail::Short(Short::Truncated(
                    "joblib object array pickle is cut short".into(),
                ))),
                End::Invalid(o, m) => Err(Fail::Invalid(format!(
                    "joblib object array pickle (from offset {at}) is invalid at {o}: {m}"
                ))),
            };
        }
        s.skip(layout.nbytes, "joblib array data")?;
        Ok(())
    }
}

pub(super) fn global_names(module: &[u8], name: &[u8]) -> Result<(String, String), Fail> {
    let module = std::str::from_utf8(module)
        .map_err(|_| Fail::Invalid("GLOBAL module name is not UTF-8".into()))?;
    let name =
        std::str::from_utf8(name).map_err(|_| Fail::Invalid("GLOBAL name is not UTF-8".into()))?;
    // The real loader imports the module by name: a name that is not a dotted identifier
    // cannot be imported, so the load stops here.
    if !valid_dotted(module) || !valid_dotted(name) {
        return Err(Fail::Invalid(format!(
            "GLOBAL `{}` `{}` is not an importable name",
            module.escape_debug(),
            name.escape_debug()
        )));
    }
    Ok((module.to_owned(), name.to_owned()))
}

pub(super) fn parse_key(line: &[u8]) -> Result<u64, Fail> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Fail::Invalid("memo key is not a number".into()))
}

pub(super) fn long_value(b: &[u8]) -> V {
    if b.len() > 8 {
        return V::Other;
    }
    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
        [0xffu8; 8]
    } else {
        [0u8; 8]
    };
    for (d, s) in buf.iter_mut().zip(b) {
        *d = *s;
    }
    V::Int(i64::from_le_bytes(buf))
}

pub(super) fn dict_from(items: Vec<V>) -> V {
    let mut pairs = Vec::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if pairs.len() < MAX_TRACKED_ITEMS {
            pairs.push((k, v));
        }
    }
    V::Dict(Rc::new(pairs.into()))
}

/// A short description of a value for evidence.
pub fn describe(v: &V) -> String {
    match v {
        V::Str(s) => format!("{:?}", s.chars().take(80).collect::<String>()),
        V::Bytes(b) => format!("<{} bytes>", b.len()),
        V::Int(i) => i.to_string(),
        V::None => "None".into(),
        V::Global(_) => "<global>".into(),
        V::Unresolved => "<unresolved>".into(),
        V::Called(_) => "<object>".into(),
        V::Tuple(items) => {
            let parts: Vec<String> = items.iter().take(6).map(describe).collect();
            format!("({})", parts.join(", "))
        }
        V::Dict(_) => "{…}".into(),
        V::Other => "<value>".into(),
    }
}
