//! Samples built at test time by `tests/gen/make_samples.py` (stdlib Python only): benign
//! files shaped like real PyTorch, NumPy and scikit-learn/joblib output must scan clean with no
//! finding at all, and every attack technique must give its expected exit code. Each
//! technique also has a named regression test below.

#![allow(
    clippy::expect_used,
    reason = "test helpers fail the test on broken fixtures"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use aigis_report::{Report, Severity};

fn samples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifact-samples");
        let _ = std::fs::remove_dir_all(&dir);
        let python = std::env::var("AIGIS_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen/make_samples.py");
        let status = Command::new(python)
            .arg(script)
            .arg(&dir)
            .status()
            .expect("python3 runs the sample generator");
        assert!(status.success(), "sample generator failed");
        dir
    })
}

fn report(path: &Path) -> Report {
    let outcome = aigis_artifact::scan::scan_file(path);
    let mut report = Report::new("aigis scan", "test");
    outcome.findings.into_iter().for_each(|f| report.add(f));
    outcome
        .not_scanned
        .into_iter()
        .for_each(|n| report.add_not_scanned(n));
    report
}

fn describe(r: &Report) -> String {
    let mut out = Vec::new();
    r.render(aigis_report::Format::Table, &mut out)
        .expect("render");
    String::from_utf8_lossy(&out).into_owned()
}

/// (name, exit, fail-on, technique) rows of the manifest.
fn manifest() -> Vec<(String, i32, Severity, String)> {
    let text = std::fs::read_to_string(samples().join("manifest.tsv")).expect("manifest");
    text.lines()
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_owned(),
                c[1].parse().expect("exit"),
                c[2].parse().expect("severity"),
                c[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_generated_sample_gives_its_exit_code() {
    let mut failures = Vec::new();
    let rows = manifest();
    for (name, exit, fail_on, technique) in &rows {
        let r = report(&samples().join(name));
        let got = r.exit_code(*fail_on);
        if got != *exit {
            failures.push(format!(
                "{name} ({technique}): expected {exit} at --fail-on {fail_on}, got {got}\n{}",
                describe(&r)
            ));
        }
        if name.starts_with("benign_") && (!r.findings().is_empty() || !r.not_scanned().is_empty())
        {
            failures.push(format!(
                "{name}: benign sample is not silent\n{}",
                describe(&r)
            ));
        }
    }
    println!(
        "{} generated samples, {} failed",
        rows.len(),
        failures.len()
    );
    assert!(rows.len() > 60);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn assert_rule(name: &str, rule: &str, severity: Severity) {
    let r = report(&samples().join(name));
    assert!(
        r.findings()
            .iter()
            .any(|f| f.rule_id() == rule && f.severity() >= severity),
        "{name}: expected {rule} at {severity} or above\n{}",
        describe(&r)
    );
}

macro_rules! regression {
    ($($test:ident: $file:literal => $rule:literal, $sev:ident;)*) => {
        $(
            #[test]
            fn $test() {
                assert_rule($file, $rule, Severity::$sev);
            }
        )*
    };
}

regression! {
    reduce_os_system: "reduce_os_system.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    posix_alias: "posix_alias.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    builtin_eval_protocol_0: "builtin_eval_proto0.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    inst_opcode: "inst_opcode.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    obj_opcode: "obj_opcode.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    newobj: "newobj_call.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    newobj_ex: "newobj_ex_call.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    stack_global_through_memo: "stack_global_memo.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    stack_global_from_legacy_string_opcodes: "stack_global_string_opcodes.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    stack_global_unicode_escape: "stack_global_unicode_escape.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    dotted_name_through_innocent_module: "dotted_name.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    getattr_chain: "getattr_chain.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    getattr_chain_indirect_call: "getattr_chain.pkl" => "AIG-PICKLE-INDIRECT-CALL", High;
    operator_methodcaller: "operator_methodcaller.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    operator_attrgetter: "operator_attrgetter.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    pkgutil_resolve_name: "pkgutil_resolve_name.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    stdlib_command_helper: "uuid_command_helper.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    submodule_of_dangerous_module: "importlib_submodule.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    copyreg_extension_opcode: "ext_opcode.pkl" => "AIG-PICKLE-EXT", High;
    build_on_module_object: "build_on_module.pkl" => "AIG-PICKLE-BUILD-GLOBAL", Critical;
    scanner_self_reference: "scanner_self_reference.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    aigis_self_reference: "aigis_self_reference.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    types_codetype: "types_codetype.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    marshalled_code: "marshal_code.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    torch_load_of_another_file: "torch_load_nested.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    numpy_load_of_another_file: "numpy_load_nested.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    nested_pickle_loads: "nested_pickle_loads.pkl" => "AIG-PICKLE-NESTED", High;
    nested_base64_pickle: "nested_base64.pkl" => "AIG-PICKLE-NESTED", High;
    nested_hex_pickle: "nested_hex.pkl" => "AIG-PICKLE-NESTED", High;
    unknown_callable_called: "unknown_callable.pkl" => "AIG-PICKLE-UNKNOWN-CALL", High;
    bit_generator_ctor_calls_its_class: "bit_generator_ctor_class.pkl" => "AIG-PICKLE-UNKNOWN-CALL", High;
    unknown_global_referenced: "unknown_reference.pkl" => "AIG-PICKLE-UNKNOWN-GLOBAL", Medium;
    concatenated_pickles: "multiple_pickles.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    garbage_after_stop: "garbage_after_stop.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    truncated_stream: "truncated_after_payload.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    stack_global_type_confusion: "type_confusion.pkl" => "AIG-PICKLE-UNRESOLVED-GLOBAL", High;
    missing_memo_key: "missing_memo_key.pkl" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    unusual_binpersid: "persid_unusual.pkl" => "AIG-PICKLE-PERSID", Medium;
    text_persid: "persid_text.pkl" => "AIG-PICKLE-PERSID", Medium;
    discarded_call_result: "discarded_call.pkl" => "AIG-PICKLE-DISCARDED-CALL", Medium;
    frame_length_mismatch: "frame_mismatch.pkl" => "AIG-PICKLE-FRAME", Medium;
    huge_declared_length: "huge_declared_length.pkl" => "AIG-PICKLE-MALFORMED", Low;
    memo_growth: "memo_growth.pkl" => "AIG-PICKLE-RESOURCE", Medium;
    torch_zip_payload: "torch_zip_malicious.pt" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    torch_zip_extension_bypass: "torch_zip_extra_member.pt" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    torch_legacy_payload: "torch_legacy_malicious.pt" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    torch_tar_payload: "torch_tar_malicious.pt" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    torchscript_code: "torchscript_code.pt" => "AIG-TORCHSCRIPT-CODE", High;
    npy_object_payload: "npy_object_malicious.npy" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    npz_object_payload: "npz_object_malicious.npz" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    joblib_payload_after_arrays: "joblib_after_array.joblib" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    joblib_payload_after_raw_array_bytes: "joblib_payload_after_wrapper.joblib" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    joblib_zlib_compressed: "joblib_compressed_malicious.joblib.z" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    gzip_wrapper: "gzip_pickle.pkl.gz" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    bz2_wrapper: "bz2_pickle.pkl.bz2" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    xz_wrapper: "xz_pickle.pkl.xz" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    tar_member: "tar_pickle.tar" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    tar_path_traversal: "tar_slip_and_link.tar" => "AIG-TAR-PATH", Medium;
    tar_link: "tar_slip_and_link.tar" => "AIG-TAR-LINK", Medium;
    zip_wrong_extension: "zip_wrong_extension.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_name_mismatch: "zip_name_mismatch.zip" => "AIG-ZIP-NAME-MISMATCH", Medium;
    zip_name_mismatch_payload: "zip_name_mismatch.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_crc_mismatch: "zip_bad_crc.zip" => "AIG-ZIP-CRC", Medium;
    zip_crc_mismatch_payload: "zip_bad_crc.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_encrypted_flag_trick: "zip_flag_encrypted.zip" => "AIG-ZIP-FLAGS", Medium;
    zip_encrypted_flag_payload: "zip_flag_encrypted.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_flag_0x20: "zip_flag_0x20.zip" => "AIG-ZIP-FLAGS", Medium;
    zip_hidden_local_entry: "zip_hidden_local.zip" => "AIG-ZIP-HIDDEN", Medium;
    zip_hidden_local_payload: "zip_hidden_local.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_two_views: "zip_two_views.zip" => "AIG-ZIP-STRUCTURE", Medium;
    zip_two_views_payload: "zip_two_views.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_prepended_stub_payload: "zip_prepended_stub.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip64_two_end_records: "zip64_two_end_records.zip" => "AIG-ZIP-STRUCTURE", Medium;
    zip64_two_end_records_payload: "zip64_two_end_records.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_count_short: "zip_count_short.zip" => "AIG-ZIP-STRUCTURE", Medium;
    zip_count_short_payload: "zip_count_short.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
    zip_duplicate_names: "zip_duplicate_names.zip" => "AIG-ZIP-DUPLICATE", Medium;
    zip_slip: "zip_slip.zip" => "AIG-ZIP-PATH", Medium;
    zip_symlink: "zip_symlink.zip" => "AIG-ZIP-SYMLINK", Medium;
    zip_in_zip: "zip_in_zip.zip" => "AIG-PICKLE-DANGEROUS-GLOBAL", Critical;
}

/// When only one loader can read an archive's directory, the other's failure is reported:
/// behind a prepended stub PyTorch finds no directory where the end record says it is.
#[test]
fn a_directory_only_one_loader_reads_is_reported() {
    let r = report(&samples().join("zip_prepended_stub.zip"));
    assert!(
        r.findings()
            .iter()
            .any(|f| f.rule_id() == "AIG-ZIP-STRUCTURE"
                && f.message()
                    .contains("PyTorch's reading of the central directory fails")),
        "{}",
        describe(&r)
    );
}

#[test]
fn zip_bomb_is_not_scanned() {
    let r = report(&samples().join("zip_bomb.zip"));
    assert_eq!(r.exit_code(Severity::High), 2, "{}", describe(&r));
}

#[test]
fn deep_nesting_is_not_scanned() {
    let r = report(&samples().join("deep_nesting.zip"));
    assert_eq!(r.exit_code(Severity::High), 2, "{}", describe(&r));
}

/// A pinned requirements file whose first letters happen to be pickle opcodes (`t`, `o`, `r`)
/// is text, not a broken pickle (a model directory often holds one).
#[test]
fn requirements_text_is_not_a_pickle() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("requirements-text");
    std::fs::create_dir_all(&dir).expect("tmp");
    let text = dir.join("requirements.txt");
    std::fs::write(&text, "torch==2.4.0\nnumpy==1.26.4\n").expect("write");
    let r = report(&text);
    assert_eq!(r.exit_code(Severity::Info), 0, "{}", describe(&r));
    // A text-protocol pickle that imports a callable is still caught under a text name.
    let evil = dir.join("notes.txt");
    std::fs::write(&evil, b"cos\nsystem\n(S'id'\ntR.").expect("write");
    let r = report(&evil);
    assert_eq!(r.exit_code(Severity::High), 1, "{}", describe(&r));
}
