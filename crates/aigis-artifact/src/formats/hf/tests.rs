use std::io::Cursor;

use aigis_report::Severity;

use super::{applies_to, scan, scan_json, sniff};
use crate::formats::chat_template::tests::BENIGN;
use crate::{Input, Origin, Outcome};

fn json(v: &serde_json::Value) -> Outcome {
    scan_json(
        v.to_string().as_bytes(),
        &Origin::file("tokenizer_config.json"),
    )
}

#[test]
fn benign_tokenizer_config_is_clean() {
    for (_, t) in BENIGN {
        let v =
            serde_json::json!({"bos_token": "<s>", "chat_template": t, "model_max_length": 8192});
        let out = json(&v);
        assert!(
            out.findings.is_empty() && out.not_scanned.is_empty(),
            "{:?}",
            out.findings
        );
    }
    let v = serde_json::json!({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096});
    assert!(json(&v).findings.is_empty());
}

#[test]
fn malicious_template_in_list_form_is_critical() {
    let v = serde_json::json!({"chat_template": [
        {"name": "default", "template": BENIGN[3].1},
        {"name": "tool_use", "template": "{{ lipsum.__globals__['os'].popen('id').read() }}"}
    ]});
    let out = json(&v);
    let critical: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.severity() == Severity::Critical)
        .collect();
    assert_eq!(critical.len(), 1, "{:?}", out.findings);
    let f = critical[0];
    assert_eq!(f.severity(), Severity::Critical);
    assert!(f.message().contains("tool_use"));
    assert_eq!(f.location().key_path(), Some("/chat_template/1/template"));
}

#[test]
fn duplicate_chat_template_keys_are_both_analysed() {
    let text = format!(
        r#"{{"chat_template": {:?}, "chat_template": "{{{{ cycler.__init__.__globals__ }}}}"}}"#,
        BENIGN[3].1
    );
    let out = scan_json(text.as_bytes(), &Origin::file("tokenizer_config.json"));
    assert!(
        out.findings
            .iter()
            .any(|f| f.severity() == Severity::Critical),
        "{:?}",
        out.findings
    );
}

#[test]
fn auto_map_is_remote_code() {
    let v = serde_json::json!({
        "auto_map": {
            "AutoConfig": "configuration_phi.PhiConfig",
            "AutoModelForCausalLM": "evil/other-repo--modeling_x.Model",
            "AutoTokenizer": ["tokenization_x.Tok", null]
        },
        "trust_remote_code": true
    });
    let out = scan_json(v.to_string().as_bytes(), &Origin::file("config.json"));
    let sev: Vec<(&str, Severity)> = out
        .findings
        .iter()
        .map(|f| (f.rule_id(), f.severity()))
        .collect();
    assert_eq!(
        sev.iter().filter(|(r, _)| *r == "AIG-HF-001").count(),
        3,
        "{sev:?}"
    );
    assert!(sev.contains(&("AIG-HF-001", Severity::High)));
    assert!(sev.contains(&("AIG-HF-003", Severity::Medium)));
    let medium = out
        .findings
        .iter()
        .find(|f| f.severity() == Severity::Medium && f.rule_id() == "AIG-HF-001");
    assert!(
        medium.is_some_and(|f| f.message().contains("configuration_phi.py")
            || f.message().contains("tokenization_x.py"))
    );
}

#[test]
fn custom_pipelines_are_remote_code() {
    let v = serde_json::json!({"custom_pipelines": {"text-classification": {"impl": "pipe.MyPipeline", "pt": ["AutoModel"]}}});
    let out = json(&v);
    assert!(out.findings.iter().any(|f| f.message().contains("pipe.py")));
}

#[test]
fn jinja_side_file_and_names() {
    assert!(applies_to("repo/tokenizer_config.json"));
    assert!(applies_to("chat_template.jinja"));
    assert!(applies_to("model.zip!config.json"));
    assert!(!applies_to("model.safetensors"));
    assert!(sniff(br#" {"chat_template": "x"}"#));
    assert!(!sniff(br#"{"vocab_size": 3}"#));
    let t = b"{{ x.__class__.__mro__ }}".to_vec();
    let mut c = Cursor::new(t.clone());
    let mut input = Input {
        source: &mut c,
        len: t.len() as u64,
        origin: Origin::file("chat_template.jinja"),
    };
    let out = scan(&mut input);
    assert_eq!(out.findings[0].severity(), Severity::Critical);
}

#[test]
fn invalid_json_fails_closed() {
    let out = scan_json(
        b"{\"chat_template\": ",
        &Origin::file("tokenizer_config.json"),
    );
    assert_eq!(out.not_scanned.len(), 1);
    let out = scan_json(b"[1, 2]", &Origin::file("config.json"));
    assert_eq!(out.not_scanned.len(), 1);
}

proptest::proptest! {
    #[test]
    fn mutated_side_files_never_panic(cut in 0usize..3000, flip in 0usize..3000, byte: u8) {
        let v = serde_json::json!({"chat_template": [{"name": "default", "template": BENIGN[1].1}], "auto_map": {"AutoModel": "m.C"}});
        let mut b = v.to_string().into_bytes();
        if let Some(x) = b.get_mut(flip) { *x = byte; }
        b.truncate(cut);
        let _ = scan_json(&b, &Origin::file("tokenizer_config.json"));
    }
}
