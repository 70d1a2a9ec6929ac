//! What BUILD and BINPERSID mean for the analysis (module rebinding, PyTorch storages, joblib's
//! in-stream arrays), and the operand helpers of the opcode loop.

use std::rc::Rc;

use aigis_report::Severity;

use super::{Fail, Machine};
use crate::formats::pickle::catalogue::{self, Verdict};
use crate::formats::pickle::joblib::{ArrayLayout, build_attrs};
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
            V::Called(o) => match self.joblib_wrapper(o) {
                Some(built) => {
                    let attrs = if built {
                        merge_attrs(o.state.borrow().as_ref(), &state)
                    } else {
                        None
                    };
                    *o.state.borrow_mut() = Some(
                        attrs
                            .clone()
                            .map_or(V::Other, |a| V::Dict(Rc::new(a.into()))),
                    );
                    self.joblib_array(attrs.as_deref(), at, s)?;
                }
                None => *o.state.borrow_mut() = Some(state),
            },
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

    /// Whether BUILD on `o` makes joblib read an array: `o` is a `NumpyArrayWrapper` made by
    /// NEWOBJ/REDUCE or by `copyreg._reconstructor(NumpyArrayWrapper, object, None)` (protocols
    /// 0 and 1). `Some(false)` when its constructor ran with arguments, which set attributes
    /// (a default alignment among them) that the scan cannot see.
    fn joblib_wrapper(&self, o: &Obj) -> Option<bool> {
        let import = |v: Option<&V>| match v {
            Some(V::Global(i)) => self.imports.get(*i),
            _ => None,
        };
        let callee = o.import.and_then(|i| self.imports.get(i))?;
        if catalogue::is_joblib_wrapper(&callee.module, &callee.name) {
            return Some(matches!(&o.args, V::Tuple(a) if a.is_empty()));
        }
        let cls = import(o.args.item(0))?;
        if catalogue::is_reconstructor(&callee.module, &callee.name)
            && catalogue::is_joblib_wrapper(&cls.module, &cls.name)
        {
            let base = import(o.args.item(1));
            let plain = base.is_some_and(|b| catalogue::is_object(&b.module, &b.name));
            return Some(plain);
        }
        None
    }

    /// joblib reads each array's raw bytes (or, for object arrays, a separate pickle) right
    /// after the BUILD of its `NumpyArrayWrapper`; joblib's unpickler resumes after them.
    /// `attrs` is the wrapper's attributes, `None` when they cannot be known.
    fn joblib_array(
        &mut self,
        attrs: Option<&[(V, V)]>,
        at: u64,
        s: &mut Stream,
    ) -> Result<(), Fail> {
        let layout = attrs
            .ok_or("its attributes cannot be read")
            .and_then(ArrayLayout::from_attrs);
        let layout = match layout {
            Ok(layout) => layout,
            // pickle.load reads on; the joblib reading reports the unknown layout.
            Err(_) if !self.joblib_layout => return Ok(()),
            Err(why) => {
                return Err(Fail::Limit(format!(
                    "joblib array header at offset {at}: {why}, so where joblib resumes the pickle is unknown"
                )));
            }
        };
        if self.joblib_layout {
            self.joblib_arrays += 1;
            if let Some(end) = self.frame_end
                && end > s.pos()
            {
                // joblib's pure-Python unpickler has read the whole frame already: it takes
                // the array from after the frame and then runs the rest of the frame.
                self.event(
                    "AIG-PICKLE-JOBLIB-LAYOUT",
                    Severity::High,
                    at,
                    format!("a joblib array starts inside a FRAME that has {} bytes left: joblib reads the array from after the frame while the pickle goes on inside it, so joblib and other readers run different opcodes (joblib ends the frame before every array)", end - s.pos()),
                    "BUILD of NumpyArrayWrapper inside a FRAME".into(),
                    false,
                );
            }
        }
        if layout.object {
            // Read by a fresh unpickler (its own memo) in both readings: pickle.load would
            // share the outer memo, but a GET that only resolves there is unresolved here,
            // and an unresolved import or call is reported.
            let mut sub = Machine::new(self.torchscript);
            sub.joblib_layout = self.joblib_layout;
            let end = sub.run_one(s);
            self.imports.append(&mut sub.imports);
            self.events.append(&mut sub.events);
            self.nested.append(&mut sub.nested);
            self.ops += sub.ops;
            self.joblib_arrays += sub.joblib_arrays;
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
        if !self.joblib_layout {
            // pickle.load runs the padding and array bytes as opcodes.
            return Ok(());
        }
        if layout.padded {
            let pad = s.uint(1, "joblib alignment padding length")?;
            s.skip(pad, "joblib alignment padding")?;
        }
        s.skip(layout.nbytes, "joblib array data")?;
        Ok(())
    }
}

/// Most attributes kept for a joblib wrapper across its BUILDs.
const MAX_WRAPPER_ATTRS: usize = 4 * MAX_TRACKED_ITEMS;

/// The wrapper's attributes after a BUILD with `state`: BUILD updates the instance dict, so
/// earlier attributes stay unless reassigned.
fn merge_attrs(prev: Option<&V>, state: &V) -> Option<Vec<(V, V)>> {
    let mut attrs = match prev {
        None => Vec::new(),
        Some(V::Dict(d)) => d.borrow().clone(),
        Some(_) => return None,
    };
    attrs.extend(build_attrs(state)?);
    (attrs.len() <= MAX_WRAPPER_ATTRS).then_some(attrs)
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
