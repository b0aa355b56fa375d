#!/usr/bin/python3
"""Generate PyTorch reference ("golden") shapes for layerc model files.

For every given ``*.nn`` file this script builds the model directly in PyTorch
-- without using any layerc code -- runs a forward pass on zeros and writes
``tests/golden/shapes/<stem>.torch.json`` describing every layer.  The goldens
are what the layerc shape checker / state_dict layout is tested against.

Run it from anywhere with Debian's interpreter (it has torch; the ``python3``
on PATH may not):

    /usr/bin/python3 tools/gen_shape_goldens.py               # examples/*.nn tests/shapes/*.nn
    /usr/bin/python3 tools/gen_shape_goldens.py a.nn b.nn     # just these
    /usr/bin/python3 tools/gen_shape_goldens.py -o DIR a.nn   # other output dir

How the .nn text is read (a deliberately small, independent parser):
  * ``#`` and ``//`` start a comment unless inside a quoted string.
  * ``model Name {`` ... ``}`` encloses the model; one statement per line.
  * ``input x: f32[64, 3, 32, 32]``: dims are integers, except that the first
    may be a name (e.g. ``N``), the batch size chosen at run time.
  * ``[name =] Layer(args)``: the call text is valid Python and is evaluated
    as ``nn.<call text>`` (True/False/None, strings, tuples work as usual).
    An unnamed layer is named by its 0-based index among all layers, as in
    nn.Sequential.  Layers are applied in order; RNN/LSTM/GRU pass on element
    0 of their output tuple (the output sequence).

Forward pass: the model is put in eval() mode and fed zeros (torch.long zeros
for integer inputs).  A named batch dim is run with batch 2 (the recorded run)
and again with batch 3 to tell which output dims depend on the batch.  Lazy
modules (LazyLinear, ...) are materialised by the first forward; parameter
counts and state_dict shapes are read after it.

Batch rule for output_shape: an output dim is written as the string "N" (the
input's batch name) iff it equals the batch size in both runs (2 and 3); a dim
that equals k * batch in both runs is written "N*k" (e.g. after Flatten(0, -1));
every other dim must be identical in both runs and is written as an integer
(anything else is an error).  For fixed-batch inputs all dims are integers.

Output JSON (json.dump(indent=1) layout, except that shapes are written on one
line and state_dict gets one [key, shape] entry per line; keys in this order):
  {
   "model": "Cifar10",                       # name after the `model` keyword
   "input_name": "x",
   "input_dtype": "f32",                     # as written: f32, i64, ...
   "input_shape": ["N", 3, 32, 32],          # named batch kept as its name
   "layers": [
    {"name": "conv1",                        # given name, or index as a string
     "type": "Conv2d",                       # layer name as written in the .nn
                                             # (LazyLinear stays "LazyLinear")
     "output_shape": ["N", 32, 32, 32],
     "params": 2432,                         # sum numel() of parameters()
     "state_dict": [["conv1.weight", [32, 3, 5, 5]],
                    ["conv1.bias", [32]]]},  # full keys, state_dict() order;
    ...                                      # scalars (num_batches_tracked) -> []
   ],
   "total_params": 2432
  }

The output is deterministic (fixed seed, zero inputs, no timestamps).
"""

import argparse
import glob
import json
import os
import re
import sys
import warnings

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "tests", "golden", "shapes")
DTYPES = {
    "f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
    "bf16": torch.bfloat16, "i64": torch.long, "i32": torch.int32,
}
RUN_BATCH = 2    # batch used for the recorded forward pass
PROBE_BATCH = 3  # second run, only to detect batch-dependent dims
RECURRENT = (nn.RNNBase,)  # RNN, LSTM, GRU return (output, hidden)


class Select(nn.Module):
    """layerc's Select(dim, index): x.select(dim, index) (torch.nn has no such module)."""

    def __init__(self, dim, index):
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x):
        return x.select(self.dim, self.index)


class Mean(nn.Module):
    """layerc's Mean(dim, keepdim=False): x.mean(dim, keepdim)."""

    def __init__(self, dim, keepdim=False):
        super().__init__()
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x):
        return x.mean(self.dim, keepdim=self.keepdim)


# The layers of the language that are not torch.nn modules, built from these.
LAYERC_LAYERS = {"Select": Select, "Mean": Mean}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
RE_MODEL = re.compile(r"^model\s+(%s)\s*\{$" % IDENT)
RE_INPUT = re.compile(r"^input\s+(%s)\s*:\s*(%s)\s*\[(.*)\]$" % (IDENT, IDENT))
RE_LAYER = re.compile(r"^(?:(%s)\s*=\s*)?((%s)\s*\(.*\))$" % (IDENT, IDENT))


class NnError(Exception):
    pass


def strip_comment(line):
    """Remove a #... or //... comment that is not inside a quoted string."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" or line.startswith("//", i):
            return line[:i]
        i += 1
    return line


def parse_nn(text, path):
    """Return (model_name, input_name, dtype_str, dims, [(name, type, call)])."""
    model = inp = None
    layers = []
    closed = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw).strip()
        if not line:
            continue
        where = "%s:%d" % (path, lineno)
        if closed:
            raise NnError("%s: text after the closing '}'" % where)
        if model is None:
            m = RE_MODEL.match(line)
            if not m:
                raise NnError("%s: expected 'model Name {'" % where)
            model = m.group(1)
            continue
        if line == "}":
            closed = True
            continue
        m = RE_INPUT.match(line)
        if m:
            if inp is not None:
                raise NnError("%s: second input" % where)
            if layers:
                raise NnError("%s: input must come before the layers" % where)
            name, dtype, dims_text = m.groups()
            if dtype not in DTYPES:
                raise NnError("%s: unknown dtype %r" % (where, dtype))
            dims = []
            for k, d in enumerate(x.strip() for x in dims_text.split(",")):
                if re.fullmatch(r"[0-9]+", d):
                    dims.append(int(d))
                elif k == 0 and re.fullmatch(IDENT, d):
                    dims.append(d)
                else:
                    raise NnError("%s: bad dim %r" % (where, d))
            inp = (name, dtype, dims)
            continue
        m = RE_LAYER.match(line)
        if m:
            if inp is None:
                raise NnError("%s: layer before input" % where)
            name, call, ltype = m.groups()
            if name is None:
                name = str(len(layers))
            layers.append((name, ltype, call, where))
            continue
        raise NnError("%s: cannot parse %r" % (where, line))
    if model is None or not closed:
        raise NnError("%s: missing 'model Name { ... }'" % path)
    if inp is None:
        raise NnError("%s: no input" % path)
    names = [l[0] for l in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise NnError("%s: duplicate layer names %s" % (path, dup))
    return model, inp[0], inp[1], inp[2], layers


def build(layers):
    mods = []
    for name, ltype, call, where in layers:
        own = ltype in LAYERC_LAYERS
        if not own and not isinstance(getattr(nn, ltype, None), type):
            raise NnError("%s: torch.nn has no layer %r" % (where, ltype))
        try:
            mod = eval(call if own else "nn." + call, {"__builtins__": {}, "nn": nn, **LAYERC_LAYERS})
        except Exception as e:
            raise NnError("%s: nn.%s failed: %s: %s"
                          % (where, call, type(e).__name__, e))
        mods.append(mod)
    return mods


def forward(mods, layers, x):
    shapes = []
    with torch.no_grad():
        for mod, (name, ltype, call, where) in zip(mods, layers):
            try:
                y = mod(x)
            except Exception as e:
                raise NnError("%s: forward of %s on %s failed: %s: %s"
                              % (where, call, list(x.shape),
                                 type(e).__name__, e))
            if isinstance(mod, RECURRENT):
                y = y[0]
            if not isinstance(y, torch.Tensor):
                raise NnError("%s: %s returned %s, not a tensor"
                              % (where, ltype, type(y).__name__))
            x = y
            shapes.append(list(x.shape))
    return shapes


def symbolic(shape_a, shape_b, batch_name, where):
    if len(shape_a) != len(shape_b):
        raise NnError("%s: rank depends on the batch size" % where)
    out = []
    for a, b in zip(shape_a, shape_b):
        if a == RUN_BATCH and b == PROBE_BATCH:
            out.append(batch_name)
        elif a == b:
            out.append(a)
        elif a % RUN_BATCH == 0 and a // RUN_BATCH * PROBE_BATCH == b:
            out.append("%s*%d" % (batch_name, a // RUN_BATCH))
        else:
            raise NnError("%s: dim %d/%d is not a multiple of the batch"
                          % (where, a, b))
    return out


def golden(path):
    with open(path) as f:
        text = f.read()
    model, in_name, dtype, dims, layers = parse_nn(text, path)
    torch.manual_seed(0)
    mods = build(layers)
    for m in mods:
        m.eval()
    batch_name = dims[0] if isinstance(dims[0], str) else None

    def zeros(batch):
        shape = [batch if isinstance(d, str) else d for d in dims]
        return torch.zeros(shape, dtype=DTYPES[dtype])

    shapes = forward(mods, layers, zeros(RUN_BATCH))
    if batch_name is not None:
        probe = forward(mods, layers, zeros(PROBE_BATCH))
        shapes = [symbolic(a, b, batch_name, l[3])
                  for a, b, l in zip(shapes, probe, layers)]

    out_layers = []
    total = 0
    for mod, shape, (name, ltype, call, where) in zip(mods, shapes, layers):
        params = sum(p.numel() for p in mod.parameters())
        total += params
        sd = [[name + "." + k, list(v.shape)]
              for k, v in mod.state_dict().items()]
        out_layers.append({"name": name, "type": ltype,
                           "output_shape": shape, "params": params,
                           "state_dict": sd})
    return {"model": model, "input_name": in_name, "input_dtype": dtype,
            "input_shape": dims, "layers": out_layers, "total_params": total}


def _flat(v):
    """True for a scalar or a list that contains no list or dict."""
    return not isinstance(v, (list, dict)) or (
        isinstance(v, list) and not any(isinstance(w, (list, dict)) for w in v))


def dumps(obj, level=0):
    """json.dump(indent=1) layout, but lists without dicts are kept compact:
    a list of scalars (a shape) goes on one line, a list of [key, shape] pairs
    (the state_dict) gets one pair per line.  json.load() sees the same data."""
    pad = " " * (level + 1)
    end = "\n" + " " * level
    if isinstance(obj, dict) and obj:
        items = ["%s%s: %s" % (pad, json.dumps(k), dumps(v, level + 1))
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + end + "}"
    if isinstance(obj, list) and not _flat(obj):
        if all(isinstance(v, list) and all(_flat(w) for w in v) for v in obj):
            rows = [pad + json.dumps(v) for v in obj]
        else:
            rows = [pad + dumps(v, level + 1) for v in obj]
        return "[\n" + ",\n".join(rows) + end + "]"
    return json.dumps(obj)


def main(argv):
    ap = argparse.ArgumentParser(
        description="Write PyTorch shape goldens for .nn model files.")
    ap.add_argument("files", nargs="*",
                    help="default: examples/*.nn tests/shapes/*.nn")
    ap.add_argument("-o", "--out-dir", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    files = args.files or (
        sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn")))
        + sorted(glob.glob(os.path.join(ROOT, "tests", "shapes", "*.nn"))))
    if not files:
        print("no .nn files", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Lazy modules are a new feature")
    os.makedirs(args.out_dir, exist_ok=True)
    failed = 0
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        try:
            g = golden(path)
        except NnError as e:
            print("error: %s" % e, file=sys.stderr)
            failed += 1
            continue
        dest = os.path.join(args.out_dir, stem + ".torch.json")
        with open(dest, "w") as f:
            f.write(dumps(g) + "\n")
        print("%s -> %s (%d layers, %d params, output %s)"
              % (os.path.relpath(path), os.path.relpath(dest),
                 len(g["layers"]), g["total_params"],
                 g["layers"][-1]["output_shape"] if g["layers"] else "-"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
