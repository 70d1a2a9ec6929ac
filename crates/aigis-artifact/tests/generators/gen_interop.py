#!/usr/bin/env python3
"""Writes safetensors, GGUF and ONNX fixtures with the formats' own reference writers, and
NumPy objects pickled by NumPy itself.

Usage: gen_interop.py OUTDIR

Benign files must scan clean (no false positive on what the real writers produce); the
malicious variants are built with the same writers plus the one crafted field. Pinned versions:
requirements-fixtures.txt (numpy only: no torch, no tensorflow).
"""
import pickle
import sys
from pathlib import Path

import numpy as np


def safetensors_files(out):
    from safetensors.numpy import save_file

    save_file(
        {
            "model.embed.weight": np.zeros((64, 16), dtype=np.float32),
            "model.norm.weight": np.ones((16,), dtype=np.float16),
            "model.step": np.array(3, dtype=np.int64),
            "model.mask": np.zeros((3, 5), dtype=np.bool_),
        },
        out / "benign.safetensors",
        metadata={"format": "np"},
    )
    # The same file with a payload appended after the last tensor.
    data = (out / "benign.safetensors").read_bytes()
    (out / "trailing.safetensors").write_bytes(data + b"\x80\x04cos\nsystem\n.")


LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
SSTI = (
    "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
    "{{ x()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}"
)


def gguf_file(path, template, tensors=True):
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("fixture")
    w.add_context_length(2048)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<s>", "</s>", "hello", "world"])
    w.add_token_types([3, 3, 1, 1])
    w.add_chat_template(template)
    if tensors:
        w.add_tensor("token_embd.weight", np.zeros((4, 64), dtype=np.float32))
        w.add_tensor("output_norm.weight", np.ones((64,), dtype=np.float16))
        w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
        for qtype in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
            q = gguf.quants.quantize(np.ones((8, 256), dtype=np.float32), qtype)
            w.add_tensor(f"blk.0.{qtype.name.lower()}.weight", q, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def ggml_sizes(out):
    import json
    from gguf.constants import GGML_QUANT_SIZES

    sizes = {t.value: [block, size] for t, (block, size) in GGML_QUANT_SIZES.items()}
    (out / "ggml_sizes.json").write_text(json.dumps(sizes))


def onnx_files(out):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import set_external_data

    def graph(nodes, init):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])
        return helper.make_graph(nodes, "g", [x], [y], init)

    weight = numpy_helper.from_array(np.zeros((64, 64), dtype=np.float32), "w")
    benign = helper.make_model(graph([helper.make_node("MatMul", ["x", "w"], ["y"])], [weight]))
    onnx.save_model(benign, out / "benign.onnx")
    onnx.save_model(benign, out / "external.onnx", save_as_external_data=True,
                    location="external.onnx.data", size_threshold=0)

    custom = helper.make_model(
        graph([helper.make_node("Gelu", ["x"], ["y"], domain="com.example.ops")], []),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.ops", 1)],
    )
    onnx.save_model(custom, out / "custom_op.onnx")

    traversal = numpy_helper.from_array(np.zeros((64, 64), dtype=np.float32), "w")
    set_external_data(traversal, location="../../../../etc/passwd")
    traversal.ClearField("raw_data")
    traversal.data_location = TensorProto.EXTERNAL
    evil = helper.make_model(graph([helper.make_node("MatMul", ["x", "w"], ["y"])], [traversal]))
    (out / "traversal.onnx").write_bytes(evil.SerializeToString())


def numpy_pickles(out):
    """NumPy objects as pickle writes them (what joblib and torch.save embed), and an .npz."""
    objects = {
        "default_rng": np.random.default_rng(0),
        "random_state": np.random.RandomState(0),
        "pcg64dxsm": np.random.Generator(np.random.PCG64DXSM(1)),
        "philox": np.random.Generator(np.random.Philox(1)),
        "sfc64": np.random.Generator(np.random.SFC64(1)),
        "mt19937": np.random.Generator(np.random.MT19937(1)),
        "seed_sequence": np.random.SeedSequence(5),
        "masked": np.ma.masked_array([1.0, 2.0], [False, True]),
        "structured": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    }
    (out / "numpy").mkdir(exist_ok=True)
    for name, obj in objects.items():
        for proto in (2, 4, 5):
            (out / "numpy" / f"{name}_p{proto}.pkl").write_bytes(pickle.dumps(obj, protocol=proto))
    np.savez_compressed(out / "numpy" / "arrays.npz", a=np.arange(4), b=np.ones(3))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    safetensors_files(out)
    gguf_file(out / "benign.gguf", LLAMA3)
    gguf_file(out / "vocab_only.gguf", LLAMA3, tensors=False)
    gguf_file(out / "ssti.gguf", SSTI)
    ggml_sizes(out)
    onnx_files(out)
    numpy_pickles(out)


if __name__ == "__main__":
    main()
