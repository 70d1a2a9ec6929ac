//! Every rule id the scanner reports, with a one-line description (for SARIF rule metadata and
//! `docs/scan.md`).

/// `(rule id, description)` for every rule.
pub const RULES: &[(&str, &str)] = &[
    (
        "AIG-PICKLE-DANGEROUS-GLOBAL",
        "The pickle imports or calls a known-dangerous callable or anything in a dangerous module (critical).",
    ),
    (
        "AIG-PICKLE-UNKNOWN-CALL",
        "The pickle calls a callable that is not on the allowlist, or names a dotted attribute chain (high).",
    ),
    (
        "AIG-PICKLE-UNKNOWN-GLOBAL",
        "The pickle imports a name that is not on the allowlist without calling it (medium).",
    ),
    (
        "AIG-PICKLE-INDIRECT-CALL",
        "A call on something other than an imported global: the result of getattr/attrgetter or another call (high).",
    ),
    (
        "AIG-PICKLE-UNRESOLVED-GLOBAL",
        "STACK_GLOBAL operands that are not strings: the import cannot be known statically (high).",
    ),
    (
        "AIG-PICKLE-EXT",
        "EXT1/EXT2/EXT4 import through copyreg's extension registry (high).",
    ),
    (
        "AIG-PICKLE-BUILD-GLOBAL",
        "BUILD on a module or class object rebinds attributes an allowlist trusts (critical).",
    ),
    (
        "AIG-PICKLE-NESTED",
        "A pickle embedded in an operand (raw, hex or base64) carries its own findings (high).",
    ),
    (
        "AIG-PICKLE-PERSID",
        "A persistent id other than PyTorch's ('storage', <storage class>, ...) (medium).",
    ),
    (
        "AIG-PICKLE-DISCARDED-CALL",
        "An allowlisted call whose result is thrown away: called only for a side effect (medium).",
    ),
    (
        "AIG-PICKLE-FRAME",
        "FRAME lengths that disagree with the data (medium).",
    ),
    (
        "AIG-PICKLE-MEMO",
        "A memo key read before it is written: the load fails there (medium).",
    ),
    (
        "AIG-PICKLE-RESOURCE",
        "Memory-exhaustion patterns such as unbounded memo growth (medium, and not scanned).",
    ),
    (
        "AIG-PICKLE-OUT-OF-BAND",
        "Protocol 5 out-of-band buffers whose bytes the file does not contain (low).",
    ),
    (
        "AIG-PICKLE-JOBLIB-LAYOUT",
        "A joblib array laid out so that joblib and other unpicklers run different opcodes, such as an array inside an open FRAME (high).",
    ),
    (
        "AIG-PICKLE-MALFORMED",
        "Truncated stream, data after STOP or an invalid opcode after valid ones (low).",
    ),
    (
        "AIG-POLYGLOT",
        "Bytes recognised as another format (tar, zlib, zip...) that are also a pickle naming callables (medium; the pickle's own findings are reported too).",
    ),
    (
        "AIG-ZIP-NAME-MISMATCH",
        "Central directory and local header name a member differently (medium).",
    ),
    (
        "AIG-ZIP-FLAGS",
        "Encrypted/patched/strong-encryption flag bits on readable members, or flags that differ between headers (medium).",
    ),
    (
        "AIG-ZIP-CRC",
        "A member fails its CRC-32: strict readers refuse it, PyTorch loads it (medium).",
    ),
    (
        "AIG-ZIP-HIDDEN",
        "A local entry that the central directory does not list (medium).",
    ),
    ("AIG-ZIP-OVERLAP", "Members whose data overlaps (medium)."),
    (
        "AIG-ZIP-PATH",
        "A member name that escapes the extraction directory (medium).",
    ),
    (
        "AIG-ZIP-SYMLINK",
        "A member that is a symbolic link (medium).",
    ),
    (
        "AIG-ZIP-DUPLICATE",
        "Two members with the same name (medium).",
    ),
    (
        "AIG-ZIP-STRUCTURE",
        "A zip without a central directory, or whose directory PyTorch and Python's zipfile read differently: prepended data, or a member count that disagrees with the records (medium).",
    ),
    (
        "AIG-TAR-LINK",
        "A tar member that is a symbolic or hard link (medium).",
    ),
    (
        "AIG-TAR-PATH",
        "A tar member name that escapes the extraction directory (medium).",
    ),
    (
        "AIG-NPY-HEADER",
        "An .npy header without a readable dtype (low).",
    ),
    (
        "AIG-TORCHSCRIPT-CODE",
        "TorchScript source that imports modules or reaches the interpreter or the OS (high).",
    ),
];
