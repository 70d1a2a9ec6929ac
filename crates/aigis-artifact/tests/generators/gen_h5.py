#!/usr/bin/env python3
"""Writes Keras-shaped legacy .h5 fixtures with h5py only (no TensorFlow, no Keras).

Usage: gen_h5.py OUTDIR

The root group gets the attributes Keras 2's `save_model` writes (`keras_version`, `backend`,
`model_config`, `training_config`), stored the ways h5py can store them: fixed-length byte
strings (what Keras writes, `json.dumps(...).encode()`), variable-length UTF-8 strings (global
heap), the default file format (superblock v0, object header v1) and `libver="latest"`
(superblock v3, object header v2). Pinned versions: requirements-fixtures.txt.
"""
import json
import marshal
import codecs
import sys
from pathlib import Path

import h5py
import numpy as np


def dense(name, units):
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": "relu",
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}}}}


def model(layers):
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def lambda_layer(fn):
    code = codecs.encode(marshal.dumps(fn.__code__), "base64").decode("ascii")
    return {"class_name": "Lambda", "config": {"name": "lambda", "function": [code, None, None],
            "function_type": "lambda", "module": "__main__", "output_shape": None, "arguments": {}}}


BENIGN = model([dense("d1", 8), dense("d2", 1)])
MALICIOUS = model([dense("d1", 8), lambda_layer(lambda x: __import__("os").system("id"))])
TRAINING = {"loss": "mse", "metrics": ["mae"], "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}


def write(path, config, *, libver=None, vlen=False, weights=True, training=True):
    kwargs = {"libver": libver} if libver else {}
    with h5py.File(path, "w", **kwargs) as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        text = json.dumps(config)
        f.attrs["model_config"] = text if vlen else text.encode("utf8")
        if training:
            f.attrs["training_config"] = json.dumps(TRAINING).encode("utf8")
        if weights:
            g = f.create_group("model_weights")
            g.attrs["layer_names"] = np.array([b"d1", b"d2"])
            g.create_dataset("d1/kernel:0", data=np.zeros((4, 8), dtype="float32"))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    write(out / "benign_v0_fixed.h5", BENIGN)
    write(out / "benign_v0_vlen.h5", BENIGN, vlen=True)
    write(out / "benign_latest.h5", BENIGN, libver="latest")
    write(out / "lambda_v0_fixed.h5", MALICIOUS)
    write(out / "lambda_v0_vlen.h5", MALICIOUS, vlen=True)
    write(out / "lambda_latest_vlen.h5", MALICIOUS, libver="latest", vlen=True)
    with h5py.File(out / "weights_only.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"d1"])
        f.create_dataset("d1/kernel:0", data=np.zeros((2, 2), dtype="float32"))
    # Over 64 KiB of config with a Lambda at the end: must be caught or reported as not scanned.
    big = model([dense(f"dense_{i}", 8) for i in range(2000)] + MALICIOUS["config"]["layers"][1:])
    write(out / "big_latest.h5", big, libver="latest")
    write(out / "big_v0.h5", big)
    # More than 8 attributes under libver="latest" moves them to dense storage (fractal heap).
    with h5py.File(out / "dense_attrs_latest.h5", "w", libver="latest") as f:
        for i in range(12):
            f.attrs[f"extra_{i}"] = b"x"
        f.attrs["model_config"] = json.dumps(MALICIOUS).encode("utf8")


if __name__ == "__main__":
    main()
