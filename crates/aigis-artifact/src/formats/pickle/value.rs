//! Symbolic values on the pickle machine's stack and memo: enough of each value to resolve
//! imported names, follow calls, recognise PyTorch persistent ids and joblib array headers;
//! everything else is `Other`. Values share through `Rc`, so DUP/GET fan-out costs no copies.

use std::cell::RefCell;
use std::rc::Rc;

/// Most items kept for a tuple or dict (longer ones keep their length only).
pub const MAX_TRACKED_ITEMS: usize = 64;

/// An object built by calling an import (REDUCE, NEWOBJ, OBJ, INST).
#[derive(Debug)]
pub struct Obj {
    /// Index of the called import, or `None` for a call on something that is not an import.
    pub import: Option<usize>,
    /// The call's arguments.
    pub args: V,
    /// The state given by BUILD, if any.
    pub state: RefCell<Option<V>>,
}

/// A symbolic value.
#[derive(Debug, Clone)]
pub enum V {
    /// Text (UNICODE, STRING…).
    Str(Rc<str>),
    /// Bytes (BINBYTES, SHORT_BINSTRING…).
    Bytes(Rc<[u8]>),
    /// Integers and booleans.
    Int(i64),
    /// None.
    None,
    /// An imported global (index into the machine's imports).
    Global(usize),
    /// A global that could not be resolved (STACK_GLOBAL on non-strings, EXT codes).
    Unresolved,
    /// The result of a call.
    Called(Rc<Obj>),
    /// A tuple (items kept when short).
    Tuple(Rc<[V]>),
    /// A dict (items kept when short).
    Dict(Rc<RefCell<Vec<(V, V)>>>),
    /// Anything else.
    Other,
}

impl V {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of an int value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            V::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Item `i` of a tuple value.
    pub fn item(&self, i: usize) -> Option<&V> {
        match self {
            V::Tuple(items) => items.get(i),
            _ => None,
        }
    }

    /// A tuple of `items` (kept when short).
    pub fn tuple(items: Vec<V>) -> V {
        if items.len() <= MAX_TRACKED_ITEMS {
            V::Tuple(items.into())
        } else {
            V::Other
        }
    }
}
