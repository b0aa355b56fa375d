#!/usr/bin/python3
"""Generate PyTorch reference ("golden") model OUTPUTS for layerc.

Every case is a directory ``tests/golden/outputs/<case>/`` holding a
hand-written ``model.nn``.  For each one this script builds the model in
PyTorch -- with the small independent .nn parser of gen_shape_goldens.py, no
layerc code -- gives it weights, runs one input through it and writes, next
to model.nn:

  weights.safetensors  the full state_dict (F32 tensors, I64
                       num_batches_tracked), keys named by the .nn rule:
                       a named layer's name, an unnamed layer's 0-based
                       index among all layers ("3.weight")
  input.npy            the input: float32, or int64 for an i64 input
  expected.npy         the model's output, float32
  case.json            {"atol": 1e-4, "rtol": 1e-4, "batch": 2, "seed": S}
                       (+ "comment" when a tolerance is not the default):
                       a compiled output y passes when, elementwise,
                       |y - expected| <= atol + rtol * |expected|  (numpy's
                       allclose rule).  "batch" is the size of the input's
                       first dimension: the run-time batch (2) when that
                       dimension is a name such as N, else the declared size
                       (what reference_run() takes).  "seed" is the case's
                       torch seed (crc32 of the case name), for the record.

A case whose case.json has a "generator" (the graph-form cases written by
gen_graph_goldens.py, whose model.nn has a forward section) is skipped, both
when all cases are regenerated and in --check.

Run it with Debian's interpreter (it has torch 1.13; the python3 on PATH may
not):

    /usr/bin/python3 tools/gen_output_goldens.py              # every case
    /usr/bin/python3 tools/gen_output_goldens.py conv2d_basic # just these
    /usr/bin/python3 tools/gen_output_goldens.py --check      # regenerate in
        memory and compare with the files on disk byte for byte (exit 1 if not
        identical); writes nothing

How a case is generated (deterministic: regenerating gives identical bytes):
  1. torch.manual_seed(seed); the layers are built (nn.<call text>), so every
     parameter gets PyTorch's default initialisation; eval() mode.
  2. The input is drawn from a separate torch.Generator seeded with seed + 1:
     f32 -> torch.randn (times a per-case scale, e.g. x4 for ReLU6 so values
     exceed 6); i64 -> torch.randint(0, num_embeddings of the first layer).
     A named batch dimension gets batch 2.  A few cases use a fixed input
     (the PyTorch tutorial's 5x5 max-pooling toy) or force some ids (id 0 for
     Embedding's padding_idx).
  3. One forward pass materialises lazy modules (LazyLinear); Embedding
     weights are restored after it (max_norm renormalises them in place), and
     the state_dict is taken before the output is computed, so it holds rows
     longer than max_norm.
  4. Constant-initialised state is perturbed (generator seeded with seed + 2),
     so that it is really tested:
       BatchNorm: running_mean ~ U(-0.5, 0.5), running_var ~ U(0.5, 2),
                  weight ~ U(0.5, 1.5), bias ~ U(-0.5, 0.5)
                  (num_batches_tracked stays 0; unused in eval)
       LayerNorm (also inside TransformerEncoderLayer): weight ~ U(0.5, 1.5),
                  bias ~ U(-0.5, 0.5)
       MultiheadAttention in_proj_bias, out_proj.bias (zeros by default):
                  ~ U(-0.2, 0.2)
     Embedding's padding_idx row stays zero (as PyTorch initialises it).
  5. The output is computed under torch.no_grad(), layer by layer; RNN, LSTM
     and GRU pass on element 0 of their output tuple (as the front end does).
  6. Self-checks: the safetensors file is read back with this script's own
     reader and compared bit for bit with the state_dict, input.npy and
     expected.npy are np.load()ed back, and the float32 output is compared
     with a float64 run of the same model: the difference (PyTorch's own
     float32 error) must be at most a tenth of the case's tolerance.

safetensors is written without the safetensors package: an 8-byte
little-endian header length, a JSON header {key: {"dtype": "F32"|"I64",
"shape": [...], "data_offsets": [begin, end]}} with sorted keys, compact
separators and space padding to a multiple of 8 bytes, then the tensors'
raw little-endian bytes in key order.
"""

import argparse
import copy
import glob
import io
import json
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn

sys.dont_write_bytecode = True   # no tools/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_shape_goldens import DTYPES, NnError, RECURRENT, build, parse_nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES_DIR = os.path.join(ROOT, "tests", "golden", "outputs")
RUN_BATCH = 2
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4

# The PyTorch tutorial's toy input for MaxPool2d (1x1x5x5).
TUTORIAL_TOY = [[1, 2, 0, 3, 1],
                [0, 1, 2, 3, 1],
                [1, 2, 1, 0, 0],
                [5, 2, 3, 1, 1],
                [2, 1, 0, 1, 1]]

# Per-case settings; a case not listed uses the defaults (scale 1, random
# input, atol = rtol = 1e-4).  Keys: scale, fixed_input, force_ids (list of
# (index tuple, id)), atol, rtol, comment, exact (list of lists that
# expected.npy must equal exactly, checked after generation), infinities
# (the output may hold infinities, which the float64 run must equal), batch
# (the run-time batch of a named batch dimension, instead of 2).
SETTINGS = {
    "relu6": {"scale": 4.0},
    "sigmoid": {"scale": 4.0},
    "tanh": {"scale": 4.0},
    "hardswish": {"scale": 4.0},
    "linear_hardswish": {"scale": 4.0},
    "softmax_2d": {"scale": 4.0},
    "softmax_4d": {"scale": 4.0},
    "log_softmax": {"scale": 4.0},
    "maxpool2d_tutorial_ceil": {"fixed_input": [[TUTORIAL_TOY]],
                                "exact": [[[[2, 3], [5, 1]]]]},
    "maxpool2d_tutorial_floor": {"fixed_input": [[TUTORIAL_TOY]],
                                 "exact": [[[[2]]]]},
    "embedding_padding_idx": {"force_ids": [((0, 0), 0), ((1, 3), 0)]},
    "embedding_bag_mean_padding": {"force_ids": [((0, 0), 2), ((0, 1), 2), ((0, 2), 2), ((0, 3), 2), ((1, 1), 2)]},
    "embedding_bag_max_padding": {"force_ids": [((0, 0), 2), ((0, 1), 2), ((0, 2), 2), ((0, 3), 2), ((2, 0), 2)]},
    "maxpool2d_window_in_padding": {"infinities": True},
    "example_text_lstm_batch1": {"batch": 1},
    "example_tiny_transformer_batch1": {"batch": 1},
}


class CaseError(Exception):
    pass


# ---------------------------------------------------------------- safetensors

ST_DTYPES = {torch.float32: ("F32", "<f4"), torch.int64: ("I64", "<i8")}
ST_NUMPY = {"F32": "<f4", "I64": "<i8"}


def safetensors_bytes(state):
    """Serialise {key: tensor} (float32 / int64 only) deterministically."""
    header = {}
    blobs = []
    offset = 0
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        if t.dtype not in ST_DTYPES:
            raise CaseError("%s: unsupported dtype %s" % (key, t.dtype))
        tag, npd = ST_DTYPES[t.dtype]
        data = t.numpy().astype(npd, copy=False).tobytes(order="C")
        header[key] = {"dtype": tag, "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"))
    raw = text.encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def read_safetensors(blob):
    """Parse safetensors bytes into {key: numpy array}, validating as we go."""
    if len(blob) < 8:
        raise CaseError("safetensors: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise CaseError("safetensors: header length %d past the end" % n)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = np.dtype(ST_NUMPY[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise CaseError("safetensors: %s: bad data_offsets" % key)
        spans.append((b, e))
        out[key] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"])
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise CaseError("safetensors: gap or overlap at byte %d" % b)
        pos = e
    if pos != len(data):
        raise CaseError("safetensors: %d trailing bytes" % (len(data) - pos))
    return out


def npy_bytes(arr):
    f = io.BytesIO()
    np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
    return f.getvalue()


# ---------------------------------------------------------------- the model

class Stack(nn.Module):
    """The .nn layer stack; state_dict keys are "<layer name>.<key>"."""

    def __init__(self, names, mods):
        super().__init__()
        self.names = list(names)
        for name, mod in zip(names, mods):
            self.add_module(name, mod)

    def forward(self, x):
        for name in self.names:
            mod = getattr(self, name)
            x = mod(x)
            if isinstance(mod, RECURRENT):
                x = x[0]
        return x


def perturb(model, gen):
    def uniform(t, lo, hi):
        with torch.no_grad():
            t.copy_(torch.rand(t.shape, generator=gen, dtype=torch.float64)
                    .mul(hi - lo).add(lo).to(t.dtype))

    for _, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is not None:
                uniform(m.running_mean, -0.5, 0.5)
                uniform(m.running_var, 0.5, 2.0)
            if m.affine:
                uniform(m.weight, 0.5, 1.5)
                uniform(m.bias, -0.5, 0.5)
        elif isinstance(m, nn.LayerNorm):
            if m.elementwise_affine:
                uniform(m.weight, 0.5, 1.5)
                uniform(m.bias, -0.5, 0.5)
        elif isinstance(m, nn.MultiheadAttention):
            if m.in_proj_bias is not None:
                uniform(m.in_proj_bias, -0.2, 0.2)
            if m.out_proj.bias is not None:
                uniform(m.out_proj.bias, -0.2, 0.2)


def make_input(case, dtype, dims, mods, gen, settings):
    shape = [settings.get("batch", RUN_BATCH) if isinstance(d, str) else d for d in dims]
    if "fixed_input" in settings:
        x = torch.tensor(settings["fixed_input"], dtype=DTYPES[dtype])
        if list(x.shape) != shape:
            raise CaseError("%s: fixed input shape %s, model.nn says %s"
                            % (case, list(x.shape), shape))
        return x
    if dtype == "f32":
        return torch.randn(shape, generator=gen) * settings.get("scale", 1.0)
    if dtype == "i64":
        first = mods[0]
        if not isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
            raise CaseError("%s: i64 input but the first layer is %s"
                            % (case, type(first).__name__))
        x = torch.randint(0, first.num_embeddings, shape, generator=gen)
        for index, value in settings.get("force_ids", []):
            x[index] = value
        return x
    raise CaseError("%s: input dtype %s not supported here" % (case, dtype))


def generate(case_dir):
    """Return ({filename: bytes}, info) for one case directory."""
    case = os.path.basename(os.path.normpath(case_dir))
    settings = SETTINGS.get(case, {})
    nn_path = os.path.join(case_dir, "model.nn")
    with open(nn_path) as f:
        text = f.read()
    model_name, _, dtype, dims, layers = parse_nn(text, nn_path)
    seed = zlib.crc32(case.encode()) & 0x7FFFFFFF

    torch.manual_seed(seed)
    mods = build(layers)
    model = Stack([l[0] for l in layers], mods)
    model.eval()
    x = make_input(case, dtype, dims, mods, torch.Generator().manual_seed(seed + 1),
                   settings)
    # Embedding(max_norm=...) renormalises the rows it looks up in place: keep
    # the weights as they were before any forward pass, so that the saved
    # state_dict has rows longer than max_norm and the golden tests the renorm.
    renormed = [m for m in mods if isinstance(m, nn.Embedding) and m.max_norm is not None]
    originals = [m.weight.detach().clone() for m in renormed]
    with torch.no_grad():
        model(x)                       # materialise lazy modules
        for m, w in zip(renormed, originals):
            m.weight.copy_(w)
    perturb(model, torch.Generator().manual_seed(seed + 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        y = model(x)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise CaseError("%s: output is not a float tensor" % case)
    y = y.to(torch.float32).contiguous()
    if not torch.isfinite(y).all() and not settings.get("infinities"):
        raise CaseError("%s: non-finite output" % case)

    # PyTorch's own float32 error: the same model and input in float64.
    m64 = copy.deepcopy(model).double()
    x64 = x.double() if x.is_floating_point() else x
    with torch.no_grad():
        y64 = m64(x64)
    err = (y.double() - y64).abs()
    err[y.double() == y64] = 0  # equal infinities ("infinities" cases)
    atol = settings.get("atol", DEFAULT_ATOL)
    rtol = settings.get("rtol", DEFAULT_RTOL)
    # how much of the tolerance float32 PyTorch itself uses up
    used = float((err / (atol + rtol * y64.abs())).max()) if y.numel() else 0.0
    if used > 0.1:
        raise CaseError("%s: PyTorch float32 vs float64 differ by %.3g "
                        "(%.0f%% of the tolerance): loosen atol/rtol"
                        % (case, float(err.max()), 100 * used))

    meta = {"atol": atol, "rtol": rtol, "batch": int(x.shape[0]) if x.dim() else 1,
            "seed": seed}
    if "comment" in settings:
        meta["comment"] = settings["comment"]
    files = {
        "weights.safetensors": safetensors_bytes(state),
        "input.npy": npy_bytes(x.numpy()),
        "expected.npy": npy_bytes(y.numpy()),
        "case.json": (json.dumps(meta, indent=1) + "\n").encode(),
    }
    verify(case, files, state, x, y, settings)
    info = {"model": model_name, "in": list(x.shape), "out": list(y.shape),
            "tensors": len(state), "f32_err": float(err.max()) if y.numel() else 0.0,
            "tol_used": used,
            "bytes": sum(len(b) for b in files.values())}
    return files, info


def verify(case, files, state, x, y, settings):
    """Read every file back and compare with what was meant to be written."""
    st = read_safetensors(files["weights.safetensors"])
    if sorted(st) != sorted(state):
        raise CaseError("%s: safetensors keys %s != state_dict keys %s"
                        % (case, sorted(st), sorted(state)))
    for key, t in state.items():
        a = st[key]
        b = t.detach().cpu().numpy()
        if a.dtype != b.dtype.newbyteorder("<") or a.shape != b.shape \
                or a.tobytes() != np.ascontiguousarray(b).tobytes():
            raise CaseError("%s: safetensors tensor %s differs" % (case, key))
    xi = np.load(io.BytesIO(files["input.npy"]), allow_pickle=False)
    ye = np.load(io.BytesIO(files["expected.npy"]), allow_pickle=False)
    if ye.dtype != np.float32 or xi.dtype not in (np.float32, np.int64):
        raise CaseError("%s: npy dtypes %s / %s" % (case, xi.dtype, ye.dtype))
    if not np.array_equal(xi, x.numpy()) or not np.array_equal(ye, y.numpy()):
        raise CaseError("%s: npy files do not round-trip" % case)
    if "exact" in settings:
        want = np.array(settings["exact"], dtype=np.float32)
        if ye.shape != want.shape or not np.array_equal(ye, want):
            raise CaseError("%s: expected %s, PyTorch gave %s"
                            % (case, want.tolist(), ye.tolist()))
    json.loads(files["case.json"])


def other_generator(case_dir):
    """The generator named by case.json's "generator" (None: this script's case)."""
    path = os.path.join(case_dir, "case.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("generator")


def main(argv):
    ap = argparse.ArgumentParser(
        description="Write PyTorch output goldens for tests/golden/outputs/*/model.nn.")
    ap.add_argument("cases", nargs="*", help="case names or directories (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files on disk instead of writing")
    args = ap.parse_args(argv)
    if args.cases:
        dirs = [c if os.path.isdir(c) else os.path.join(CASES_DIR, c) for c in args.cases]
    else:
        dirs = sorted(os.path.dirname(p)
                      for p in glob.glob(os.path.join(CASES_DIR, "*", "model.nn")))
    # Cases written by another generator (gen_graph_goldens.py: "generator" in
    # case.json) have no stack model.nn to build here: they are skipped.
    others = [d for d in dirs if other_generator(d)]
    for d in others:
        if args.cases:
            print("%s: skipped (written by %s)" % (os.path.basename(os.path.normpath(d)), other_generator(d)))
    dirs = [d for d in dirs if d not in others]
    if not dirs:
        print("no cases", file=sys.stderr)
        return 1 if not others else 0
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Lazy modules are a new feature")
    warnings.filterwarnings("ignore", message="Using padding='same'")
    failed = 0
    total = 0
    for d in dirs:
        case = os.path.basename(os.path.normpath(d))
        try:
            files, info = generate(d)
        except (NnError, CaseError, OSError) as e:
            print("error: %s" % e, file=sys.stderr)
            failed += 1
            continue
        total += info["bytes"]
        if args.check:
            stale = []
            for name, blob in files.items():
                path = os.path.join(d, name)
                if not os.path.exists(path) or open(path, "rb").read() != blob:
                    stale.append(name)
            if stale:
                print("error: %s: differs from disk: %s" % (case, ", ".join(stale)),
                      file=sys.stderr)
                failed += 1
                continue
        else:
            for name, blob in files.items():
                with open(os.path.join(d, name), "wb") as f:
                    f.write(blob)
        print("%-32s %s -> %s  %d tensors  %6.1f KB  f32 err %.1e (%.1f%% of tol)"
              % (case, info["in"], info["out"], info["tensors"],
                 info["bytes"] / 1024, info["f32_err"], 100 * info["tol_used"]))
    print("%d cases, %d failed, %.1f KB total" % (len(dirs), failed, total / 1024))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
