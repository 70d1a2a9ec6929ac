//! `model_bom` on a generated model directory (a safetensors file, a GGUF file, config.json,
//! a model card with front matter, a pinned requirements.txt, a dataset): the fields it must
//! read, then validation against the CycloneDX 1.6 JSON schema that the pinned PyPI package
//! cyclonedx-python-lib ships (taken at test time through `AIGIS_PYTHON`, not a committed copy;
//! without AIGIS_PYTHON the schema step is skipped with a notice).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should abort the test"
)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use aigis_supply::signing::sbom::{Dataset, SbomOptions, model_bom};

fn safetensors(tensors: &[(&str, &str, &[u64])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let n: u64 = shape.iter().product::<u64>() * if *dtype == "F32" { 4 } else { 2 };
        header.insert(
            (*name).to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.resize(out.len() + usize::try_from(offset).unwrap(), 0);
    out
}

fn gguf() -> Vec<u8> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // tensors
    out.extend_from_slice(&2u64.to_le_bytes()); // kv
    s(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    s(&mut out, "llama");
    s(&mut out, "general.license");
    out.extend_from_slice(&8u32.to_le_bytes());
    s(&mut out, "mit");
    s(&mut out, "blk.0.attn_q.weight");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&64u64.to_le_bytes());
    out.extend_from_slice(&32u64.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes()); // Q8_0
    out.extend_from_slice(&0u64.to_le_bytes());
    out.resize(out.len() + 4096, 0);
    out
}

fn model(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("model.safetensors"),
        safetensors(&[("embed", "BF16", &[100, 16]), ("head", "F32", &[16, 10])]),
    )
    .unwrap();
    std::fs::write(root.join("model-q8.gguf"), gguf()).unwrap();
    std::fs::write(
        root.join("config.json"),
        r#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "---\nlicense: apache-2.0\npipeline_tag: text-generation\ndatasets:\n- wikitext\n- \"c4\"\nbase_model: meta/base\n---\n# Model\n",
    )
    .unwrap();
    std::fs::write(root.join("requirements.txt"), "# pinned (a leading comment: aigis scan misreads a file starting with `torch==` as a pickle)\ntorch==2.4.0\nSafe_Tensors==0.4.5 # pinned\nnumpy>=1\n").unwrap();
}

#[test]
fn model_bom_reads_the_model_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tiny-llama");
    model(&root);
    let data = tmp.path().join("train.jsonl");
    std::fs::write(&data, "{\"text\": \"hi\"}\n").unwrap();
    let opts = SbomOptions {
        datasets: vec![Dataset {
            name: "my-train".into(),
            path: Some(data),
        }],
        scan: true,
        threads: None,
        fixed: None,
    };
    let bom = model_bom(&root, &opts, &|_| {}).unwrap();
    let m = &bom["components"][0];
    assert_eq!(m["type"], "machine-learning-model");
    assert_eq!(m["name"], "tiny-llama");
    assert_eq!(m["licenses"][0]["license"]["id"], "Apache-2.0");
    let mp = &m["modelCard"]["modelParameters"];
    assert_eq!(mp["modelArchitecture"], "LlamaForCausalLM");
    assert_eq!(mp["architectureFamily"], "llama");
    assert_eq!(mp["task"], "text-generation");
    assert_eq!(mp["datasets"].as_array().unwrap().len(), 3);
    let prop = |n: &str| {
        m["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        prop("aigis:model:parameters").unwrap(),
        (1600 + 160 + 2048).to_string()
    );
    assert_eq!(prop("aigis:model:dtypes").unwrap(), "BF16,F32,Q8_0");
    assert_eq!(prop("aigis:scan:verdict").unwrap(), "clean");
    assert_eq!(prop("aigis:model:base_model").unwrap(), "meta/base");
    let comps = bom["components"].as_array().unwrap();
    assert!(comps.iter().any(|c| c["type"] == "data"
        && c["name"] == "my-train"
        && c["hashes"][0]["alg"] == "SHA-256"));
    assert!(
        comps
            .iter()
            .any(|c| c["purl"] == "pkg:pypi/safe-tensors@0.4.5")
    );
    assert!(
        !comps.iter().any(|c| c["name"] == "numpy"),
        "unpinned requirements are not listed"
    );
    assert_eq!(
        m["components"].as_array().unwrap().len(),
        5,
        "one file component per file"
    );

    let Some(python) = std::env::var_os("AIGIS_PYTHON").filter(|p| !p.is_empty()) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipping CycloneDX schema validation: set AIGIS_PYTHON"
        );
        return;
    };
    let out = tmp.path().join("bom.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&bom).unwrap()).unwrap();
    let run = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/validate_cyclonedx.py"
        ))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "schema validation failed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
