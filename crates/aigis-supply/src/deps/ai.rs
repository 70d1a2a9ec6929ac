//! AI-specific checks: packages that run code when a model is loaded, and names that look like
//! popular AI packages but are not.
//!
//! **Code execution on load.** `torch.load` (pickle; the `weights_only=True` bypass fixed in
//! torch 2.6.0, CVE-2025-32434), `transformers` loaders, `keras` `safe_mode` bypasses and
//! `llama-cpp-python` chat templates (Jinja2 in GGUF metadata) turn a model file into code.
//! These are found through the same advisory data as every other vulnerability; a vulnerability
//! of one of [`LOAD_SENSITIVE`] whose summary speaks of loading, deserialisation or code
//! execution is reported under its own rule so it can be triaged first.
//!
//! **Typosquats.** A package whose name is not on the curated list of popular AI packages
//! ([`POPULAR_PYPI`], [`POPULAR_NPM`]) but is one edit away from one of them (Damerau-Levenshtein: an insertion, deletion,
//! substitution or swap of neighbours), or equal to one once separators are removed, is reported as low: it may
//! be a typo that installed someone else's code. Names of fewer than 5 characters are not
//! compared (too many real packages are one edit apart), and [`KNOWN_NEIGHBOURS`] lists real
//! packages that happen to be close to a popular one.

use super::ecosystem::{Ecosystem, pep503};

/// PyPI packages that load model files in ways that can run code.
pub const LOAD_SENSITIVE: [&str; 9] = [
    "torch",
    "transformers",
    "keras",
    "tensorflow",
    "llama-cpp-python",
    "joblib",
    "diffusers",
    "sentence-transformers",
    "vllm",
];

/// Words in an advisory summary that mark a load-time code-execution issue.
const LOAD_WORDS: [&str; 11] = [
    "load",
    "deserializ",
    "deserialis",
    "pickle",
    "arbitrary code",
    "remote code",
    "code execution",
    "safe_mode",
    "safe mode",
    "template",
    "eval",
];

/// Whether a vulnerability of `name` with `summary` is a code-execution-on-load issue.
pub fn is_load_time_rce(eco: Ecosystem, name: &str, summary: &str) -> bool {
    if eco != Ecosystem::PyPi || !LOAD_SENSITIVE.contains(&pep503(name).as_str()) {
        return false;
    }
    let lower = summary.to_ascii_lowercase();
    LOAD_WORDS.iter().any(|w| lower.contains(w))
}

/// Popular PyPI packages of AI stacks (PEP 503 names).
pub const POPULAR_PYPI: [&str; 60] = [
    "torch",
    "torchvision",
    "torchaudio",
    "tensorflow",
    "keras",
    "transformers",
    "tokenizers",
    "datasets",
    "accelerate",
    "diffusers",
    "safetensors",
    "huggingface-hub",
    "sentence-transformers",
    "peft",
    "bitsandbytes",
    "optimum",
    "deepspeed",
    "vllm",
    "llama-cpp-python",
    "onnx",
    "onnxruntime",
    "openai",
    "anthropic",
    "cohere",
    "mistralai",
    "google-generativeai",
    "ollama",
    "litellm",
    "langchain",
    "langchain-core",
    "langchain-community",
    "langchain-openai",
    "llama-index",
    "haystack-ai",
    "chromadb",
    "faiss-cpu",
    "pinecone-client",
    "tiktoken",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "pytorch-lightning",
    "lightning",
    "matplotlib",
    "pillow",
    "opencv-python",
    "requests",
    "pydantic",
    "fastapi",
    "gradio",
    "streamlit",
    "mlflow",
    "wandb",
    "tensorboard",
    "einops",
    "spacy",
    "nltk",
];

/// Popular npm packages of AI stacks.
pub const POPULAR_NPM: [&str; 10] = [
    "openai",
    "@anthropic-ai/sdk",
    "langchain",
    "@langchain/core",
    "@huggingface/inference",
    "@tensorflow/tfjs",
    "onnxruntime-node",
    "llamaindex",
    "ollama",
    "@google/generative-ai",
];

/// Real packages close to a popular name (not typosquats).
pub const KNOWN_NEIGHBOURS: [&str; 12] = [
    "scapy",
    "torchx",
    "panda",
    "dataset",
    "keras-nlp",
    "keras-cv",
    "onnxsim",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "openapi",
    "pydantic2",
    "request",
];

/// Names shorter than this are not compared.
pub const MIN_TYPOSQUAT_LEN: usize = 5;

/// The popular package `name` looks like, if it looks like one without being one.
pub fn typosquat_of(eco: Ecosystem, name: &str) -> Option<&'static str> {
    let (popular, normalized): (&[&'static str], String) = match eco {
        Ecosystem::PyPi => (&POPULAR_PYPI, pep503(name)),
        Ecosystem::Npm => (&POPULAR_NPM, name.to_ascii_lowercase()),
        _ => return None,
    };
    if normalized.chars().count() < MIN_TYPOSQUAT_LEN
        || popular.contains(&normalized.as_str())
        || KNOWN_NEIGHBOURS.contains(&normalized.as_str())
    {
        return None;
    }
    let squashed: String = normalized.chars().filter(|c| c.is_alphanumeric()).collect();
    popular.iter().copied().find(|&p| {
        if p.chars().count() < MIN_TYPOSQUAT_LEN {
            return false;
        }
        let p_squashed: String = p.chars().filter(|c| c.is_alphanumeric()).collect();
        squashed == p_squashed || strsim::damerau_levenshtein(&normalized, p) <= 1
    })
}
