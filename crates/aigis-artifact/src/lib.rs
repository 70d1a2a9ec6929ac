//! Model file formats and a scanner that finds malicious code in them before anyone loads them.
//!
//! Every format parser has the same shape: it reads an [`Input`] (a seekable byte source, its
//! length and where it came from) and returns an [`Outcome`]: the findings, and what it could
//! not examine. Parsers never trust lengths or offsets in the file; they read through bounded,
//! checked reads and report a truncated or inconsistent structure as a finding or as
//! "not scanned" (limits fail closed), never by panicking.

#![deny(missing_docs)]

pub mod container;
pub mod detect;
pub mod formats;
pub mod reader;
pub mod rules;
pub mod scan;

use std::io::{Read, Seek};

use aigis_report::{Finding, Location, NotScanned};

/// A byte source a parser can read and seek: a file on disk, or an archive member in memory.
pub trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// Where the bytes being parsed came from: the file on disk and, inside archives, the member
/// path (`outer.zip!inner.pt!archive/data.pkl` style, joined with `!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file given on the command line (or found in a directory walk).
    pub file: String,
    /// The member path inside archives, if any.
    pub member: Option<String>,
}

impl Origin {
    /// The origin of a file on disk.
    pub fn file(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            member: None,
        }
    }

    /// The origin of `name` inside this one (an archive member, a nested pickle).
    #[must_use]
    pub fn child(&self, name: &str) -> Self {
        let member = match &self.member {
            Some(m) => format!("{m}!{name}"),
            None => name.to_owned(),
        };
        Self {
            file: self.file.clone(),
            member: Some(member),
        }
    }

    /// A report location at `offset` bytes into this origin's bytes.
    pub fn at(&self, offset: u64) -> Location {
        self.location().with_byte_offset(offset)
    }

    /// This origin (with its member path) as an input that could not be examined.
    pub fn not_scanned(&self, reason: impl Into<String>) -> NotScanned {
        let path = match &self.member {
            Some(m) => format!("{}!{m}", self.file),
            None => self.file.clone(),
        };
        NotScanned::new(path, reason)
    }

    /// A report location for this origin without an offset.
    pub fn location(&self) -> Location {
        let location = Location::new(self.file.clone());
        match &self.member {
            Some(m) => location.with_member(m.clone()),
            None => location,
        }
    }
}

/// What a parser reads.
pub struct Input<'a> {
    /// The bytes, positioned anywhere (parsers seek to where they need).
    pub source: &'a mut dyn Source,
    /// Total length of the source in bytes.
    pub len: u64,
    /// Where the bytes came from, for locations in findings.
    pub origin: Origin,
}

/// What a parser found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Findings, each located by [`Origin::at`].
    pub findings: Vec<Finding>,
    /// Parts that could not be examined (a limit hit, a structure that could not be read): the
    /// scan exits 2 unless a finding already makes it 1.
    pub not_scanned: Vec<NotScanned>,
}

impl Outcome {
    /// Adds everything in `other` to this outcome.
    pub fn merge(&mut self, other: Outcome) {
        self.findings.extend(other.findings);
        self.not_scanned.extend(other.not_scanned);
    }
}
