#!/usr/bin/env python3
"""make_seeds.py - writes the hand-made seeds of fuzz/corpus/safetensors and
fuzz/corpus/npy (the ones named st_*.safetensors and npy_*.npy), and copies a
few small golden files.  Pure standard library; run from the repository root:
    python3 fuzz/make_seeds.py
Idempotent: rewrites the same bytes every time."""
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ST_DIR = os.path.join(ROOT, "fuzz", "corpus", "safetensors")
NPY_DIR = os.path.join(ROOT, "fuzz", "corpus", "npy")

# ---------------------------------------------------------------- safetensors

# The fixed model of fuzz_safetensors.c: Conv2d(3, 4, 3), BatchNorm2d(4), Linear(144, 5), LayerNorm(5).
MODEL_TENSORS = [
    ("conv.weight", [4, 3, 3, 3]), ("conv.bias", [4]),
    ("bn.weight", [4]), ("bn.bias", [4]), ("bn.running_mean", [4]), ("bn.running_var", [4]),
    ("fc.weight", [5, 144]), ("fc.bias", [5]),
    ("ln.weight", [5]), ("ln.bias", [5]),
]
ITEM = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def encode(dtype, count, start):
    """count deterministic values of dtype as little-endian bytes."""
    vals = [((start + i) % 17 - 8) / 8.0 for i in range(count)]
    if dtype == "F32":
        return struct.pack("<%df" % count, *vals)
    if dtype == "F64":
        return struct.pack("<%dd" % count, *vals)
    if dtype == "F16":
        return struct.pack("<%de" % count, *vals)
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in vals)
    if dtype == "I64":
        return struct.pack("<%dq" % count, *[int(v * 8) for v in vals])
    raise ValueError(dtype)


def safetensors(tensors, metadata=None, pad_header=0, header_text=None, values=None):
    """tensors: [(key, dtype, shape)]; values: {key: F32 values}; returns the file bytes."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for i, (key, dtype, shape) in enumerate(tensors):
        if values and key in values:
            blob = struct.pack("<%df" % numel(shape), *values[key])
        else:
            blob = encode(dtype, numel(shape), i)
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = (header_text if header_text is not None else json.dumps(header)).encode()
    text += b" " * pad_header
    return struct.pack("<Q", len(text)) + text + data


def raw(header_text, data=b"", length=None):
    text = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def model(dtype="F32", drop=(), extra=(), reshape=None, nbt=True):
    ts = [(k, dtype, s) for k, s in MODEL_TENSORS if k not in drop]
    if reshape:
        ts = [(k, d, reshape.get(k, s)) for k, d, s in ts]
    if nbt:
        ts.append(("bn.num_batches_tracked", "I64", []))
    return ts + list(extra)


def st_seeds():
    s = {}
    s["model_f32"] = safetensors(model(), metadata={"format": "pt"})
    s["model_f16"] = safetensors(model("F16"))
    s["model_bf16"] = safetensors(model("BF16"))
    s["model_f64_no_nbt"] = safetensors(model("F64", nbt=False))
    s["model_aligned_header"] = safetensors(model(), pad_header=5)
    s["model_missing_bias"] = safetensors(model(drop=("fc.bias",)))
    s["model_unused_keys"] = safetensors(model(extra=[("conv.wieght", "F32", [1]), ("fc2.weight", "F32", [2, 2]),
                                                      ("bn.num_batches", "I64", [])]))
    s["model_wrong_shape"] = safetensors(model(reshape={"fc.weight": [144, 5], "ln.bias": [1, 5]}))
    s["model_i64_weight"] = safetensors([(k, "I64" if k == "conv.bias" else d, sh) for k, d, sh in model()])
    s["model_f32_nbt"] = safetensors([(k, "F32" if k.endswith("tracked") else d, sh) for k, d, sh in model()])
    inf, nan = float("inf"), float("nan")
    s["model_specials"] = safetensors(model(), values={"bn.running_var": [nan, inf, -1.0, 0.0],
                                                       "bn.weight": [3e38, -inf, 1e-45, -0.0],
                                                       "bn.running_mean": [inf, nan, 3e38, -3e38]})
    s["empty_object"] = raw("{}")
    s["metadata_only"] = raw('{"__metadata__": {"a": "b"}}')
    s["metadata_not_strings"] = raw('{"__metadata__": {"a": 1}}')
    s["zero_size_tensor"] = safetensors([("w", "F32", [0, 3]), ("v", "F32", [])])
    s["rank8"] = safetensors([("w", "F32", [1, 1, 1, 1, 1, 1, 1, 2])])
    s["rank9"] = safetensors([("w", "F32", [1, 1, 1, 1, 1, 1, 1, 1, 2])])
    s["overlap"] = raw('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
                       ' "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', b"\0" * 12)
    s["gap"] = raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', b"\0" * 8)
    s["offsets_reversed"] = raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', b"\0" * 4)
    s["offsets_past_end"] = raw('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', b"\0" * 8)
    s["size_mismatch"] = raw('{"a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 4]}}', b"\0" * 4)
    s["huge_shape"] = raw('{"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}', b"\0" * 8)
    s["dup_keys"] = raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                        ' "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', b"\0" * 8)
    s["unknown_dtype"] = raw('{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}', b"\0" * 4)
    s["extra_field"] = raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}', b"\0" * 4)
    s["bad_json"] = raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', b"\0" * 4)
    s["header_len_past_eof"] = raw("{}", length=1000)
    s["header_len_huge"] = raw("{}", length=(1 << 63) + 5)
    s["short"] = b"\x02\0\0\0"
    s["nan_inf_f32"] = raw('{"bn.running_var": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',
                           struct.pack("<4f", float("nan"), float("inf"), -1.0, 0.0))
    s["f16_specials"] = raw('{"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}',
                            struct.pack("<4H", 0x7c00, 0xfc00, 0x7e01, 0x0001))
    s["key_escapes"] = raw('{"a\\u0000b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
                           ' "\\u00e9.weight": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', b"\0" * 8)
    return s


GOLDEN_ST = ["batchnorm2d", "linear", "conv2d_basic", "layernorm_last", "embedding_bag_sum", "conv2d_no_bias"]

# -------------------------------------------------------------------- npy


def npy(descr, shape, data, version=1, fortran=False, header=None, align=64):
    if header is None:
        shp = "(" + "".join("%d, " % d for d in shape)
        shp = shp[:-2] + ("," if len(shape) == 1 else "") + ")" if shape else "()"
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shp)
    text = header.encode()
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(text) + 1)) % align
    text += b" " * pad + b"\n"
    lenfield = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + lenfield + text + data


def npy_seeds():
    f4 = lambda n: struct.pack("<%df" % n, *[i / 4.0 for i in range(n)])
    s = {}
    s["f4_2x3"] = npy("<f4", [2, 3], f4(6))
    s["i8_4"] = npy("<i8", [4], struct.pack("<4q", 0, -1, 1 << 62, 7))
    s["f8_2x2"] = npy("<f8", [2, 2], struct.pack("<4d", 1e300, -0.0, float("nan"), 3.5))
    s["scalar"] = npy("<f4", [], f4(1))
    s["empty"] = npy("<f4", [0, 5], b"")
    s["v2"] = npy("<f4", [3], f4(3), version=2)
    s["v3"] = npy("<i8", [1, 1], struct.pack("<q", 9), version=3)
    s["rank8"] = npy("<f4", [1] * 7 + [2], f4(2))
    s["rank9"] = npy("<f4", [1] * 9, f4(1))
    s["fortran"] = npy("<f4", [2, 2], f4(4), fortran=True)
    s["big_endian"] = npy(">f4", [1], b"\0" * 4)
    s["unsupported_dtype"] = npy("<u1", [4], b"\0" * 4)
    s["structured"] = npy(None, [1], b"\0" * 4, header="{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }")
    s["truncated_data"] = npy("<f4", [4], f4(3))
    s["extra_data"] = npy("<f4", [2], f4(3))
    s["overflow_shape"] = npy("<f8", [1 << 40, 1 << 40], b"")
    s["long_suffix"] = npy(None, [2], f4(2), header="{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }")
    s["double_quotes"] = npy(None, [2], f4(2), header='{"shape": (2,), "descr": "<f4", "fortran_order": False}')
    s["dup_key"] = npy(None, [2], f4(2), header="{'descr': '<f4', 'descr': '<f4', 'shape': (2,), }")
    s["missing_key"] = npy(None, [2], f4(2), header="{'descr': '<f4', 'shape': (2,), }")
    s["bad_version"] = b"\x93NUMPY\x04\x00" + s["f4_2x3"][8:]
    s["header_len_past_eof"] = b"\x93NUMPY\x01\x00\xff\xff{'descr'"
    s["short"] = b"\x93NUMPY\x01"
    return s


GOLDEN_NPY = ["example_relu_sigmoid", "embedding_bag_sum", "conv2d_basic", "batchnorm1d_3d"]


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(ST_DIR, exist_ok=True)
    os.makedirs(NPY_DIR, exist_ok=True)
    for name, data in st_seeds().items():
        write(ST_DIR, "st_%s.safetensors" % name, data)
    for name in GOLDEN_ST:
        shutil.copy(os.path.join(ROOT, "tests/golden/outputs", name, "weights.safetensors"),
                    os.path.join(ST_DIR, "golden_%s.safetensors" % name))
    for name, data in npy_seeds().items():
        write(NPY_DIR, "npy_%s.npy" % name, data)
    for name in GOLDEN_NPY:
        for f in ("input", "expected"):
            shutil.copy(os.path.join(ROOT, "tests/golden/outputs", name, f + ".npy"),
                        os.path.join(NPY_DIR, "golden_%s_%s.npy" % (name, f)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
