use aigis_report::Severity;
use serde_json::json;

use super::{scan_config, sniff};
use crate::{Origin, Outcome};

/// `codecs.encode(marshal.dumps((lambda x: __import__('os').system('id')).__code__), 'base64')`
/// under CPython 3.11, which is what Keras' `func_dump` stores.
const MALICIOUS_CODE: &str = "4wEAAAAAAAAAAAAAAAMAAAADAAAA80YAAACXAHQBAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAACg\nAQAAAAAAAAAAAAAAAAAAAAAAAAAAZAKmAQAAqwEAAAAAAAAAAFMAKQNO2gJvc9oCaWQpAtoKX19p\nbXBvcnRfX9oGc3lzdGVtqQHaAXhzAQAAACD6CDxzdHJpbmc++gg8bGFtYmRhPnIJAAAAAwAAAHMc\nAAAAgACNSpB00Qwc1Awc1wwj0gwjoETRDCnUDCmAAPMAAAAA\n";
/// The same for `lambda x: x * 2`.
const PLAIN_CODE: &str = "4wEAAAAAAAAAAAAAAAIAAAADAAAA8wwAAACXAHwAZAF6BQAAUwApAk7pAgAAAKkAqQHaAXhzAQAA\nACD6CDxzdHJpbmc++gg8bGFtYmRhPnIHAAAABQAAAHMKAAAAgACIQYhhiUOAAPMAAAAA\n";

fn scan(v: &serde_json::Value) -> Outcome {
    scan_config(
        v.to_string().as_bytes(),
        &Origin::file("model.keras").child("config.json"),
    )
}

fn dense(units: u32) -> serde_json::Value {
    json!({"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": units, "activation": "relu",
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}},
        "registered_name": null, "build_config": {"input_shape": [null, 8]}})
}

fn model(layers: &[serde_json::Value]) -> serde_json::Value {
    json!({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "trainable": true, "layers": layers},
        "registered_name": null, "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"learning_rate": 0.001}, "registered_name": null},
        "loss": "mse"}})
}

#[test]
fn benign_keras3_config_is_clean() {
    let v = model(&[dense(4), dense(1)]);
    assert!(sniff(v.to_string().as_bytes()));
    let out = scan(&v);
    assert!(
        out.findings.is_empty() && out.not_scanned.is_empty(),
        "{:?}",
        out.findings
    );
}

#[test]
fn keras3_lambda_with_os_call_is_critical_and_shows_the_code() {
    let lambda = json!({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lambda",
        "function": {"class_name": "__lambda__", "config": {"value": [MALICIOUS_CODE, null, null]}}}, "registered_name": null});
    let out = scan(&model(&[dense(4), lambda]));
    assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
    let f = &out.findings[0];
    assert_eq!(f.rule_id(), "AIG-KERAS-001");
    assert_eq!(f.severity(), Severity::Critical);
    let e = f
        .evidence()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    assert!(e.contains("starts e301") && e.contains("system"), "{e}");
    assert_eq!(f.location().key_path(), Some("/config/layers/1"));
}

#[test]
fn legacy_lambda_without_os_names_is_high() {
    let v = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "l", "function": [PLAIN_CODE, null, null], "function_type": "lambda", "module": "__main__"}}]}});
    let out = scan(&v);
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].severity(), Severity::High);
}

#[test]
fn function_references_are_classified() {
    let cases = [
        (
            json!({"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "function"}),
            Some(Severity::Critical),
        ),
        (
            json!({"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}),
            Some(Severity::Critical),
        ),
        (
            json!({"module": "keras.utils", "class_name": "function", "config": "get_file", "registered_name": "function"}),
            Some(Severity::High),
        ),
        (
            json!({"module": "mypkg.losses", "class_name": "function", "config": "my_loss", "registered_name": "function"}),
            Some(Severity::Medium),
        ),
        (
            json!({"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "function"}),
            None,
        ),
        (
            json!({"class_name": "Lambda", "config": {"function": "system", "function_type": "function", "module": "posix"}}),
            Some(Severity::Critical),
        ),
    ];
    for (obj, want) in cases {
        let out = scan(&model(&[
            json!({"module": "keras.layers", "class_name": "Activation", "config": {"activation": obj.clone()}}),
        ]));
        assert_eq!(
            out.findings
                .iter()
                .map(aigis_report::Finding::severity)
                .max(),
            want,
            "{obj}"
        );
    }
}

#[test]
fn custom_objects_are_medium_with_registered_name() {
    let layer = json!({"module": "my_project.layers", "class_name": "Fancy", "config": {}, "registered_name": "Custom>Fancy"});
    let out = scan(&model(&[layer]));
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].severity(), Severity::Medium);
    assert!(
        out.findings[0]
            .evidence()
            .is_some_and(|e| e.as_str().contains("Custom>Fancy"))
    );
}

#[test]
fn invalid_json_fails_closed() {
    let out = scan_config(b"{\"class_name\": ", &Origin::file("config.json"));
    assert_eq!(out.not_scanned.len(), 1);
}

proptest::proptest! {
    #[test]
    fn mutated_configs_never_panic(cut in 0usize..2000, flip in 0usize..2000, byte: u8) {
        let lambda = json!({"class_name": "Lambda", "config": {"function": [PLAIN_CODE, null, null]}});
        let mut b = model(&[dense(4), lambda]).to_string().into_bytes();
        if let Some(x) = b.get_mut(flip) { *x = byte; }
        b.truncate(cut);
        let _ = scan_config(&b, &Origin::file("config.json"));
    }
}
