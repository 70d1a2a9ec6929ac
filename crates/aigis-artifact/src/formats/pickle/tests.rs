//! Regression inputs for evasions of the pickle analysis, each named after what it reproduces.
//! The bytes are assembled here opcode by opcode; every layout was checked against CPython
//! 3.11 (and joblib 1.6 for the joblib ones) with a harmless `builtins.id` in place of
//! `posix.system`.

#![allow(clippy::cast_possible_truncation, reason = "fixtures are small")]

use aigis_report::Severity;

use crate::Outcome;
use crate::scan::scan_bytes;

pub(crate) fn su(s: &str) -> Vec<u8> {
    let mut v = vec![0x8c, s.len() as u8];
    v.extend(s.as_bytes());
    v
}

pub(crate) fn glob(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

fn long_put(key: u32) -> Vec<u8> {
    let mut v = vec![b'r'];
    v.extend(key.to_le_bytes());
    v
}

fn long_get(key: u32) -> Vec<u8> {
    let mut v = vec![b'j'];
    v.extend(key.to_le_bytes());
    v
}

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `posix.system('id')` as protocol 0 opcodes, without STOP.
pub(crate) fn system_call() -> Vec<u8> {
    cat(&[&glob("posix", "system"), b"(S'id'\ntR"])
}

pub(crate) fn describe(out: &Outcome) -> String {
    let mut lines: Vec<String> = out
        .findings
        .iter()
        .map(|f| format!("{} {:?} {}", f.rule_id(), f.severity(), f.message()))
        .collect();
    lines.extend(
        out.not_scanned
            .iter()
            .map(|n| format!("not scanned: {n:?}")),
    );
    lines.join("\n")
}

/// Reported as a real `posix.system` call is: critical, naming the callable.
pub(crate) fn assert_posix_system(out: &Outcome) {
    assert!(
        out.findings
            .iter()
            .any(|f| f.rule_id() == "AIG-PICKLE-DANGEROUS-GLOBAL"
                && f.severity() == Severity::Critical
                && f.message().contains("posix.system")),
        "posix.system is not reported as critical:\n{}",
        describe(out)
    );
}

fn max_severity(out: &Outcome) -> Option<Severity> {
    out.findings
        .iter()
        .map(aigis_report::Finding::severity)
        .max()
}

/// Key 3000 is first stored sparsely, then again once the dense part has grown past it: the
/// memo must count it once, or MEMOIZE lands on another key than CPython's and the two
/// LONG_BINGETs read `torch._utils` / `_rebuild_tensor_v2` instead of `posix` / `system`.
#[test]
fn memo_double_count_cannot_swap_a_stack_global() {
    let bytes = cat(&[
        b"\x80\x04N",
        &long_put(3000),
        &long_put(2047),
        &long_put(3000),
        b"0",
        &su("torch._utils"),
        &long_put(3),
        b"0",
        &su("posix"),
        b"\x940",
        &long_get(3),
        &su("_rebuild_tensor_v2"),
        &long_put(3),
        b"0",
        &su("system"),
        b"\x940",
        &long_get(3),
        b"\x93",
        &su("id"),
        b"\x85R.",
    ]);
    let out = scan_bytes(&bytes, "memo.pkl");
    assert_posix_system(&out);
}

/// A `NumpyArrayWrapper` BUILD with the given state entries after `dtype` (a `u1` array of
/// `n` items), as joblib's NumpyPickler writes it.
fn joblib_wrapper(n: u8, extra: &[u8]) -> Vec<u8> {
    cat(&[
        b"\x80\x02",
        &glob("joblib.numpy_pickle", "NumpyArrayWrapper"),
        b")\x81}(",
        &su("subclass"),
        &glob("numpy", "ndarray"),
        &su("shape"),
        &[b'K', n, 0x85],
        &su("order"),
        &su("C"),
        &su("dtype"),
        &glob("numpy", "dtype"),
        &su("u1"),
        b"\x89\x88\x87R",
        extra,
        b"ub",
    ])
}

/// joblib ≥ 1.2 reads a padding-length byte and padding whenever `numpy_array_alignment_bytes`
/// is set, whatever `allow_mmap` says (compressed dumps have `allow_mmap` False). Reading no
/// padding resumes 8 bytes early, on a BINBYTES that swallows the call joblib runs.
#[test]
fn joblib_padding_follows_the_alignment_attribute_not_allow_mmap() {
    let payload = system_call();
    let mut data = vec![0u8; 8];
    data.push(b'B');
    data.extend((3 + payload.len() as u32).to_le_bytes());
    data.extend([0u8; 3]);
    let bytes = cat(&[
        &joblib_wrapper(
            16,
            &cat(&[
                &su("allow_mmap"),
                b"\x89",
                &su("numpy_array_alignment_bytes"),
                b"K\x10",
            ]),
        ),
        b"\x07\xff\xff\xff\xff\xff\xff\xff",
        &data,
        &payload,
        b".",
    ]);
    let out = scan_bytes(&bytes, "model.joblib");
    assert_posix_system(&out);
}

/// joblib skips an array's bytes, but `pickle.load` of the same file runs them as opcodes.
#[test]
fn joblib_array_bytes_are_also_read_as_pickle_load_reads_them() {
    let payload = cat(&[&system_call(), b"."]);
    let bytes = cat(&[
        &joblib_wrapper(payload.len() as u8, &cat(&[&su("allow_mmap"), b"\x89"])),
        &payload,
        b".",
    ]);
    let out = scan_bytes(&bytes, "model.joblib");
    assert_posix_system(&out);
}

/// An ordinary aligned dump without mmap support (what compressed dumps hold) is clean.
#[test]
fn joblib_aligned_array_without_mmap_is_clean() {
    let bytes = cat(&[
        &joblib_wrapper(
            3,
            &cat(&[
                &su("allow_mmap"),
                b"\x89",
                &su("numpy_array_alignment_bytes"),
                b"K\x10",
            ]),
        ),
        b"\x02\xff\xff",
        b"\x01\x02\x03",
        b".",
    ]);
    let out = scan_bytes(&bytes, "model.joblib");
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{}",
        describe(&out)
    );
}

/// A later state entry wins, as in the dict BUILD updates: `None` first, then 16.
#[test]
fn joblib_alignment_uses_the_last_state_entry() {
    let payload = system_call();
    let mut data = vec![0u8; 8];
    data.push(b'B');
    data.extend((3 + payload.len() as u32).to_le_bytes());
    data.extend([0u8; 3]);
    let bytes = cat(&[
        &joblib_wrapper(
            16,
            &cat(&[
                &su("numpy_array_alignment_bytes"),
                b"N",
                &su("numpy_array_alignment_bytes"),
                b"K\x10",
            ]),
        ),
        b"\x07\xff\xff\xff\xff\xff\xff\xff",
        &data,
        &payload,
        b".",
    ]);
    assert_posix_system(&scan_bytes(&bytes, "model.joblib"));
}

/// `torch._tensor._rebuild_from_type_v2(func, new_type, args, state)` runs `func(*args)`: an
/// unknown callable passed as `func` is called, not merely imported.
#[test]
fn rebuild_from_type_v2_calls_its_func_argument() {
    let bytes = cat(&[
        b"\x80\x02",
        &glob("torch._tensor", "_rebuild_from_type_v2"),
        b"(",
        &glob("evil", "run"),
        &glob("torch", "Tensor"),
        &su("id"),
        b"\x85}t",
        b"R.",
    ]);
    let out = scan_bytes(&bytes, "model.pkl");
    assert!(
        out.findings
            .iter()
            .any(|f| f.rule_id() == "AIG-PICKLE-UNKNOWN-CALL"
                && f.severity() == Severity::High
                && f.message().contains("evil.run")),
        "{}",
        describe(&out)
    );
}

/// `copyreg._reconstructor(cls, base, state)` runs `base.__new__` and `base.__init__`.
#[test]
fn copyreg_reconstructor_calls_its_base_argument() {
    let bytes = cat(&[
        b"\x80\x02",
        &glob("copy_reg", "_reconstructor"),
        &glob("evil", "Thing"),
        &glob("evil", "Base"),
        &su("state"),
        b"\x87R.",
    ]);
    let out = scan_bytes(&bytes, "model.pkl");
    for name in ["evil.Thing", "evil.Base"] {
        assert!(
            out.findings
                .iter()
                .any(|f| f.rule_id() == "AIG-PICKLE-UNKNOWN-CALL" && f.message().contains(name)),
            "{name}:\n{}",
            describe(&out)
        );
    }
    assert_eq!(max_severity(&out), Some(Severity::High));
}

/// The `NumpyArrayWrapper` state dict for a `u1` array of `n` items, closed with BUILD.
fn wrapper_state(n: u8) -> Vec<u8> {
    cat(&[
        b"}(",
        &su("subclass"),
        &glob("numpy", "ndarray"),
        &su("shape"),
        &[b'K', n, 0x85],
        &su("order"),
        &su("C"),
        &su("dtype"),
        &glob("numpy", "dtype"),
        &su("u1"),
        b"\x89\x88\x87R",
        b"ub",
    ])
}

/// Protocols 0 and 1 make objects with `copyreg._reconstructor(cls, object, None)`: joblib
/// still reads the array after BUILD, so reading its bytes as opcodes (a BINBYTES that
/// swallows the call after the array) would hide what joblib runs.
#[test]
fn joblib_wrapper_made_by_copyreg_reconstructor_has_its_array_skipped() {
    let payload = system_call();
    let mut data = vec![b'B'];
    data.extend((payload.len() as u32).to_le_bytes());
    data.extend([0u8; 3]);
    let bytes = cat(&[
        b"\x80\x02",
        &glob("copy_reg", "_reconstructor"),
        &glob("joblib.numpy_pickle", "NumpyArrayWrapper"),
        &glob("__builtin__", "object"),
        b"N\x87R",
        &wrapper_state(data.len() as u8),
        &data,
        &payload,
        b".",
    ]);
    assert_posix_system(&scan_bytes(&bytes, "model.joblib"));
}

/// joblib's pure-Python unpickler reads a whole FRAME first, so an array whose BUILD is not
/// the frame's last opcode is read from after the frame while the pickle goes on inside it.
#[test]
fn joblib_array_inside_an_open_frame_is_reported() {
    let inframe = cat(&[
        &glob("joblib.numpy_pickle", "NumpyArrayWrapper"),
        b")\x81",
        &wrapper_state(4),
        b"0",
        &su("tail"),
        b".",
    ]);
    let bytes = cat(&[
        b"\x80\x04\x95",
        &(inframe.len() as u64).to_le_bytes(),
        &inframe,
        b"\x00\x00\x00\x00N.",
    ]);
    let out = scan_bytes(&bytes, "model.joblib");
    assert!(
        out.findings
            .iter()
            .any(|f| f.rule_id() == "AIG-PICKLE-JOBLIB-LAYOUT" && f.severity() == Severity::High),
        "{}",
        describe(&out)
    );
}
