#!/usr/bin/python3
"""test_torch2nn.py - tests of tools/torch2nn.py against live PyTorch (`make test-export`).

Needs Debian's python3-torch and torchvision and a built ./layerc.  Every
exported model is built and run by `layerc test --weights W --input X.npy
--expect Y.npy`, where Y is the PyTorch module's own output on X (computed in
float64 and rounded, as the goldens are, so that PyTorch's float32 rounding is
not in the comparison):

  stack-goldens   every stack case of tests/golden/outputs (one per layer
                  option, the stack examples among them) built in PyTorch from
                  its model.nn with its committed weights, exported, tested
                  against the committed expected.npy; and the round trip: the
                  exported text has the same `layerc shapes` report as model.nn
  graph-goldens   every case of tools/gen_graph_goldens.py (residual blocks,
                  broadcasting, cat, Bilinear, blocks, torchvision's ResNet and
                  MobileNetV2 at small sizes), the same way
  examples        every examples/*.nn against the export of its PyTorch module
                  (torchvision's resnet18() and mobilenet_v2() at 224x224, the
                  stacks built from their text): the same `layerc shapes` report
  torchvision     the VGG family (vgg11/13/16/19 and _bn at 32x32), resnet18,
                  mobilenet_v2 and others at 64x64, random weights with their
                  BatchNorm statistics measured on random inputs and spread;
                  the models that are refused, with their messages
  refusals        modules the language cannot express: the exact message, exit
                  status 1, no file written
  cli             the forms of MODULE_OR_FILE, --state-dict, --kwargs, --example-io,
                  usage errors (exit status 2)
  committed       tests/export/*/ (the `export` suite of `make test`, which has no
                  torch) is what the exporter writes today; --update rewrites it

    /usr/bin/python3 tools/test_torch2nn.py                 # everything (a few minutes)
    /usr/bin/python3 tools/test_torch2nn.py refusals cli    # these sections
    /usr/bin/python3 tools/test_torch2nn.py --update committed
Prints a line per failure (and with -v per test), a table of the torchvision
models, and ends with "N passed, N failed".
"""

import argparse
import concurrent.futures
import copy
import glob
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True
TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
import torch2nn  # noqa: E402
import gen_graph_goldens as graph_goldens  # noqa: E402
from gen_output_goldens import CASES_DIR, Stack, npy_bytes, perturb, read_safetensors  # noqa: E402
from gen_shape_goldens import build as build_stack, parse_nn  # noqa: E402

import torchvision  # noqa: E402
from torchvision.ops import SqueezeExcitation, StochasticDepth  # noqa: E402
from torchvision.ops.misc import Conv2dNormActivation  # noqa: E402

ROOT = os.path.dirname(TOOLS)
LAYERC = os.path.join(ROOT, "layerc")
EXPORT_DIR = os.path.join(ROOT, "tests", "export")
TOOL = [sys.executable, os.path.join(TOOLS, "torch2nn.py")]


class Results:
    def __init__(self, verbose):
        self.passed, self.failed, self.verbose = 0, 0, verbose

    def ok(self, name, detail=""):
        self.passed += 1
        if self.verbose:
            print("PASS %s%s" % (name, "  " + detail if detail else ""))

    def fail(self, name, detail):
        self.failed += 1
        print("FAIL %s\n    %s" % (name, detail.replace("\n", "\n    ")[:3000]))

    def check(self, name, cond, detail):
        (self.ok if cond else self.fail)(name, detail if not cond else "")


def layerc(*args, cwd=None):
    r = subprocess.run([LAYERC] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, cwd=cwd)
    return r.returncode, r.stdout


def golden_of(model, inputs):
    """The module's output in float64, rounded to float32 (PyTorch's float32 rounding left out)."""
    m64 = copy.deepcopy(model).double().eval()
    xs = [x.double() if x.is_floating_point() else x for x in inputs]
    with torch.no_grad():
        y = m64(*xs)
    return y.float().contiguous() if isinstance(y, torch.Tensor) else [t.float() for t in y]


def write_case(d, r, expected):
    """The exported files of result r, and expected (list of outputs), under d."""
    os.makedirs(d, exist_ok=True)
    files = {"model.nn": r.text.encode(), "weights.safetensors": torch2nn.safetensors_bytes(r.state)}
    files["input.npy"] = npy_bytes(r.inputs[0].numpy())
    files["expected.npy"] = npy_bytes(expected.numpy())
    for name, blob in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)
    return files


ERR_RE = re.compile(r"^expected\s+max abs error (\S+), max rel error (\S+)", re.M)


def layerc_test(d, atol=1e-4, rtol=1e-4):
    """(passed, max abs error against PyTorch, output)."""
    rc, out = layerc("test", "model.nn", "--weights", "weights.safetensors", "--input", "input.npy",
                     "--expect", "expected.npy", "--atol", str(atol), "--rtol", str(rtol), cwd=d)
    m = ERR_RE.search(out)
    return rc == 0 and "\nPASS" in out, float(m.group(1)) if m else float("nan"), out


def shapes_report(path, opts):
    r = subprocess.run([LAYERC, "shapes"] + opts + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    return r.stdout + "exit %d\n" % r.returncode


def same_report(a, b):
    """`layerc shapes` of two files (as written, and after the passes): equal, or the first difference."""
    for opts in ([], ["-O0"]):
        ra, rb = shapes_report(a, opts), shapes_report(b, opts)
        if ra != rb:
            for la, lb in zip(ra.splitlines() + [""] * 99, rb.splitlines() + [""] * 99):
                if la != lb:
                    return "shapes %s differs:\n  %s\n  %s" % (" ".join(opts), la, lb)
    return None


def export_and_test(res, name, model, shapes, inputs, expected=None, tmp=None, report_of=None, atol=1e-4,
                    rtol=1e-4, model_name=None, keep=None):
    """Export model, check the text with layerc, build and test it against expected (default: the float64
    golden of the module); report_of: a .nn file whose `layerc shapes` report the export must reproduce."""
    d = keep or tempfile.mkdtemp(dir=tmp)
    try:
        r = torch2nn.export(model, shapes, name=model_name, layerc=LAYERC, inputs=inputs)
    except torch2nn.ExportError as e:
        res.fail(name, "export failed: %s" % e)
        return None
    if expected is None:
        expected = golden_of(model, inputs)
    write_case(d, r, expected)
    passed, err, out = layerc_test(d, atol, rtol)
    res.check(name, passed, out[-1500:])
    if report_of:
        diff = same_report(report_of, os.path.join(d, "model.nn"))
        res.check(name + " (round trip: same layerc shapes report)", diff is None, diff or "")
    return err, float(expected.std()), r


# ---------------------------------------------------------------- stack goldens

def stack_golden_cases():
    out = []
    for d in sorted(glob.glob(os.path.join(CASES_DIR, "*", "model.nn"))):
        d = os.path.dirname(d)
        with open(os.path.join(d, "case.json")) as f:
            meta = json.load(f)
        if "generator" not in meta:
            out.append((os.path.basename(d), d, meta))
    return out


def load_weights(model, path):
    sd = read_safetensors(open(path, "rb").read())
    missing = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in sd.items()}, strict=True)
    return missing


# Round trips whose report differs for a reason that is not a bug: the exported text is equivalent.
REPORT_DIFFERS = {
    "lazy_linear": "a LazyLinear is a Linear once PyTorch has run it: exported as Linear(in, out)",
}


def test_stack_goldens(res, tmp, jobs):
    def one(item):
        name, d, meta = item
        text = open(os.path.join(d, "model.nn")).read()
        model_name, in_name, dtype, dims, layers = parse_nn(text, d)
        torch.manual_seed(0)
        model = Stack([l[0] for l in layers], build_stack(layers))
        x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
        if any(isinstance(m, nn.LazyLinear) for m in model.modules()):
            with torch.no_grad():
                model.eval()(x)
        load_weights(model, os.path.join(d, "weights.safetensors"))
        expected = torch.from_numpy(np.load(os.path.join(d, "expected.npy")))
        report = None if name in REPORT_DIFFERS else os.path.join(d, "model.nn")
        return export_and_test(res, "stack-goldens " + name, model, [dims], [x], expected, tmp, report,
                               meta["atol"], meta["rtol"], model_name)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(one, stack_golden_cases()))
    errs = [r[0] for r in results if r]
    print("stack-goldens: %d cases, max abs error vs PyTorch %.2e" % (len(results), max(errs)))


# ---------------------------------------------------------------- graph goldens

# Round trips that differ: the exporter writes what fx sees, the case's text is written otherwise.
GRAPH_REPORT_DIFFERS = {}


def test_graph_goldens(res, tmp, jobs):
    graph_goldens.register_torchvision_cases()

    def one(name):
        c = graph_goldens.CASES[name]
        d = os.path.join(CASES_DIR, name)
        with open(os.path.join(d, "case.json")) as f:
            meta = json.load(f)
        torch.manual_seed(0)
        model = c["build"]()
        load_weights(model, os.path.join(d, "weights.safetensors"))
        x = torch.from_numpy(np.load(os.path.join(d, "input.npy")))
        expected = torch.from_numpy(np.load(os.path.join(d, "expected.npy")))
        shape = ["N"] + list(x.shape[1:]) if re.search(r"input \w+: f32\[N,", c["nn"]) else list(x.shape)
        report = None if name in GRAPH_REPORT_DIFFERS else os.path.join(d, "model.nn")
        return export_and_test(res, "graph-goldens " + name, model, [shape], [x], expected, tmp, report,
                               meta["atol"], meta["rtol"], re.search(r"^model (\w+)", c["nn"], re.M).group(1))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(one, sorted(graph_goldens.CASES)))
    errs = [r[0] for r in results if r]
    print("graph-goldens: %d cases, max abs error vs PyTorch %.2e" % (len(results), max(errs)))


# ---------------------------------------------------------------- examples (graph form, full size)

def example_module(path):
    """(module, input dims, model name) of an example: torchvision's for the graph-form ones, else its stack
    built in PyTorch from the text."""
    text = open(path).read()
    name = os.path.basename(path)[:-3]
    model_name = re.search(r"^model (\w+)", text, re.M).group(1)
    torch.manual_seed(0)
    if name in ("resnet18", "mobilenet_v2"):
        return getattr(torchvision.models, name)(), ["N", 3, 224, 224], model_name
    model_name, in_name, dtype, dims, layers = parse_nn(text, path)
    return Stack([l[0] for l in layers], build_stack(layers)), dims, model_name


def test_examples(res, tmp):
    for example in sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn"))):
        name = os.path.basename(example)[:-3]
        model, dims, model_name = example_module(example)
        try:
            r = torch2nn.export(model, [dims], name=model_name, layerc=LAYERC, batch=1)
        except torch2nn.ExportError as e:
            res.fail("examples " + name, str(e))
            continue
        path = os.path.join(tmp, name + ".nn")
        with open(path, "w") as f:
            f.write(r.text)
        diff = same_report(example, path)
        res.check("examples %s (round trip: same layerc shapes report as examples/%s.nn)" % (name, name),
                  diff is None, diff or "")


# ---------------------------------------------------------------- torchvision

TORCHVISION_PASS = [("vgg11", 32), ("vgg11_bn", 32), ("vgg13", 32), ("vgg13_bn", 32), ("vgg16", 32),
                    ("vgg16_bn", 32), ("vgg19", 32), ("vgg19_bn", 32), ("resnet18", 64), ("mobilenet_v2", 64),
                    ("resnet34", 64), ("resnet50", 64), ("squeezenet1_0", 64), ("squeezenet1_1", 64),
                    ("efficientnet_b0", 64), ("googlenet", 64), ("mnasnet0_5", 64), ("alexnet", 64),
                    ("resnext50_32x4d", 64), ("wide_resnet50_2", 64),
                    ("inception_v3", 96, {"aux_logits": False})]
# (model, side, the message): what the language cannot express in them
TORCHVISION_REFUSED = [
    ("mobilenet_v3_small", 64, "features.1.block.1.scale_activation (torch.nn.Hardsigmoid): not supported by the "
                              "layer language"),
    ("mobilenet_v3_large", 64, "features.4.block.2.scale_activation (torch.nn.Hardsigmoid): not supported by the "
                              "layer language"),
    ("densenet121", 64, "features.denseblock1 (torchvision.models.densenet._DenseBlock): forward calls denselayer1 "
                        "with a list of tensors; the layer language passes tensors one by one"),
    ("shufflenet_v2_x0_5", 64, None),
    ("regnet_x_400mf", 64, "trunk_output.block1 (torchvision.models.regnet.AnyStage): submodule 'block1-0' cannot "
                           "be named in the layer language (not an identifier)"),
    ("convnext_tiny", 64, "features.0.1 (torchvision.models.convnext.LayerNorm2d): a subclass of torch.nn.LayerNorm "
                          "with a forward of its own, which the layer language has no form for"),
    ("vit_b_16", 224, None),
    ("swin_t", 64, None),
]


def calibrated(model, side, seed):
    """Random weights (torchvision's initialisation), BatchNorm statistics measured on random inputs and
    spread, zero biases drawn, as the goldens make them."""
    gen = torch.Generator().manual_seed(seed + 2)
    perturb(model, gen)
    graph_goldens.perturb_zero_biases(model, gen)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        graph_goldens.calibrate_batchnorm(model, [2, 3, side, side], 1.0, gen)
    return model.eval()


def test_torchvision(res, tmp, only=None):
    rows = []
    for name, side, *kwargs in TORCHVISION_PASS:
        if only and name not in only:
            continue
        kwargs = kwargs[0] if kwargs else {}
        seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = calibrated(getattr(torchvision.models, name)(**kwargs), side, seed)
        x = torch.randn([2, 3, side, side], generator=torch.Generator().manual_seed(seed + 1))
        d = tempfile.mkdtemp(dir=tmp)
        t0 = time.time()
        # the tolerance: 1e-4, or 5x PyTorch's own float32 error where that is larger (Inception-v3's output
        # std is 21 here: PyTorch's float32 is 2.9e-4 away from its float64)
        golden = golden_of(model, [x])
        with torch.no_grad():
            torch_err = float((model(x) - golden).abs().max())
        atol = max(1e-4, 5 * torch_err)
        failed = res.failed
        out = export_and_test(res, "torchvision %s %dx%d" % (name, side, side), model, [["N", 3, side, side]],
                              [x], golden, tmp=tmp, keep=d, atol=atol)
        if out:
            err, std, r = out
            blocks = len(re.findall(r"^block ", r.text, re.M))
            rows.append((name + "".join("(%s=%s)" % kv for kv in kwargs.items()), side,
                         "passes" if res.failed == failed else "FAILS", "%.1e" % err, "%.1e" % torch_err,
                         "%.2g" % atol, "%.2g" % std, "%d blocks" % blocks, "%.0f s" % (time.time() - t0)))
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))   # VGG's weights are 500 MB
    for name, side, message in TORCHVISION_REFUSED:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = getattr(torchvision.models, name)()
        try:
            torch2nn.export(model, [["N", 3, side, side]], layerc=LAYERC)
            res.fail("torchvision %s refused" % name, "exported, but expected a refusal")
            continue
        except torch2nn.ExportError as e:
            got = str(e)
        if message is None:
            res.ok("torchvision %s refused" % name)
        else:
            res.check("torchvision %s refused" % name, got == message, "got      %s\nexpected %s" % (got, message))
        rows.append((name, side, "refused: " + got, "", "", "", "", "", ""))
    print("\n| model | input | result | max abs error, layerc vs PyTorch (f64) | PyTorch f32 vs f64 | atol | output std "
          "| blocks | time |\n|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| %s |" % " | ".join(str(c) for c in row))
    print()


# ---------------------------------------------------------------- refusals

REFUSAL_MODULES = '''
import torch, torch.nn as nn, torch.nn.functional as F

class UpsampleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Upsample(scale_factor=2))
    def forward(self, x):
        return self.features(x)

class Interpolate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
    def forward(self, x):
        return F.interpolate(self.conv(x), scale_factor=2.0)

class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:
            return y
        return -y

class Permute(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
    def forward(self, x):
        return self.fc(x).permute(0, 2, 1)

class OwnParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return self.fc(x)

class ReadsParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return F.linear(x, self.fc.weight)

class LstmState(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return h

class ModuleListLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

class ConstantAdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return self.fc(x) + 1.0

class Subtract(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
    def forward(self, x):
        return self.a(x) - self.b(x)

def return_indices():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, return_indices=True))

def transposed_conv():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 4, 2))

def embedding_bag_offsets():
    return nn.Sequential(nn.EmbeddingBag(10, 4, include_last_offset=True))

def custom_activation():
    return nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, activation=nn.Tanh(), batch_first=True))

class SelectTwoDims(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return self.fc(x)[:, 1:3]

class TwoValuedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
    def forward(self, x):
        return self.fc(x), x

class UsesTwoValued(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = TwoValuedBlock()
    def forward(self, x):
        a, b = self.inner(x)
        return a + b
'''

REFUSALS = [
    ("UpsampleNet", "N,3,8,8", "features.3 (torch.nn.Upsample): not supported by the layer language"),
    ("Interpolate", "N,3,8,8", "the model (refusals.Interpolate): forward calls torch.nn.functional.interpolate, "
                               "which the layer language has no form for"),
    ("DataDependent", "N,3,8,8", "the model (refusals.DataDependent): torch.fx cannot trace its forward (TraceError: "
                                 "symbolically traced variables cannot be used as inputs to control flow); control "
                                 "flow on tensor values or Python code on their sizes has no form in the layer "
                                 "language"),
    ("Permute", "N,3,8", "the model (refusals.Permute): forward calls the tensor method .permute(), which the layer "
                         "language has no form for"),
    ("OwnParameter", "N,4", "the model (refusals.OwnParameter): has parameters of its own (scale); in the layer "
                            "language only layers have parameters"),
    ("ReadsParameter", "N,4", "the model (refusals.ReadsParameter): forward reads fc.weight directly; the layer "
                              "language keeps parameters in layers"),
    ("LstmState", "N,5,4", "the model (refusals.LstmState): uses element 1 of what lstm returns (its state); the "
                           "layer language continues with the output sequence, element 0"),
    ("ModuleListLoop", "N,4", "the model (refusals.ModuleListLoop): forward calls layers.0, a submodule of a "
                              "submodule (a ModuleList's item?); the layer language calls a module's own submodules "
                              "only"),
    ("ConstantAdd", "N,4", "the model (refusals.ConstantAdd): forward calls operator.add with the constant 1.0; "
                           "the layer language adds tensors only"),
    ("Subtract", "N,4", "the model (refusals.Subtract): forward calls a - b (operator.sub), which the layer language "
                        "has no form for"),
    ("return_indices", "N,3,8,8", "1 (torch.nn.MaxPool2d): return_indices=True is refused by the layer language "
                                  "(two outputs)"),
    ("transposed_conv", "N,3,8,8", "1 (torch.nn.ConvTranspose2d): not supported by the layer language"),
    ("embedding_bag_offsets", "N,5", "0 (torch.nn.EmbeddingBag): include_last_offset=True is refused by layerc "
                                     "build (it needs offsets, a second tensor)"),
    ("custom_activation", "N,5,8", "0 (torch.nn.TransformerEncoderLayer): activation Tanh() is refused by the layer "
                                   "language (it takes 'relu' or 'gelu')"),
    ("SelectTwoDims", "N,4", "the model (refusals.SelectTwoDims): forward indexes a tensor with [:, 1:3]; the layer "
                             "language has select(x, dim, index) only"),
    ("UsesTwoValued", "N,4", "inner (refusals.TwoValuedBlock): forward returns 2 values; a block returns one tensor"),
]


def run_tool(args, cwd):
    r = subprocess.run(TOOL + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def test_refusals(res, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "refusals.py"), "w") as f:
        f.write(REFUSAL_MODULES)
    for attr, shape, message in REFUSALS:
        rc, out, err = run_tool(["refusals.py:" + attr, "--input-shape", shape, "-o", "out.nn"], d)
        want = "torch2nn.py: error: %s\n" % message
        written = [f for f in os.listdir(d) if f not in ("refusals.py", "__pycache__")]
        res.check("refusals %s" % attr, rc == 1 and err == want and not written,
                  "exit %d, files %s\ngot      %sexpected %s" % (rc, written, err, want))


# ---------------------------------------------------------------- cli

CLI_MODULES = '''
import torch, torch.nn as nn

class Net(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16, classes)
    def forward(self, x):
        return self.fc(self.flatten(self.pool(torch.relu(self.conv(x)))))

def make_net():
    return Net(classes=3)
'''


def test_cli(res, tmp):
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "cli_nets.py"), "w") as f:
        f.write(CLI_MODULES)
    sys.path.insert(0, d)
    import cli_nets
    torch.manual_seed(3)
    net = cli_nets.Net(classes=5).eval()
    torch.save(net, os.path.join(d, "whole.pt"))
    torch.save(net.state_dict(), os.path.join(d, "state.pt"))

    def exported(label, args, files):
        rc, out, err = run_tool(args, d)
        missing = [f for f in files if not os.path.exists(os.path.join(d, f))]
        res.check("cli " + label, rc == 0 and not missing, "exit %d, missing %s\n%s%s" % (rc, missing, out, err))
        return rc == 0 and not missing

    if exported("FILE.py:Class --kwargs --state-dict --example-io",
                ["cli_nets.py:Net", "--kwargs", "{'classes': 5}", "--state-dict", "state.pt", "--input-shape",
                 "N,1,6,6", "-o", "a.nn", "--example-io", "io"], ["a.nn", "a.safetensors", "io/input.npy",
                                                                  "io/expected.npy"]):
        passed, err, out = layerc_test_files(d, "a.nn", "a.safetensors", "io/input.npy", "io/expected.npy")
        res.check("cli --example-io: layerc test passes", passed, out)
        x = torch.from_numpy(np.load(os.path.join(d, "io", "input.npy")))
        with torch.no_grad():
            want = net(x).numpy()
        res.check("cli --state-dict: the expected output is the loaded module's",
                  np.array_equal(np.load(os.path.join(d, "io", "expected.npy")), want), "outputs differ")
    if exported("whole module FILE.pt", ["whole.pt", "--input-shape", "N,1,6,6", "--weights", "w.safetensors",
                                         "-o", "b.nn"], ["b.nn", "w.safetensors"]):
        res.check("cli FILE.pt and FILE.py:Class write the same weights",
                  open(os.path.join(d, "w.safetensors"), "rb").read() == open(os.path.join(d, "a.safetensors"),
                                                                              "rb").read(), "weights differ")
    exported("module:factory (on sys.path), default output name", ["cli_nets:make_net", "--input-shape", "1,1,4,4"],
             ["make_net.nn", "make_net.safetensors"])
    exported("package.module.factory", ["torchvision.models.squeezenet1_1", "--kwargs", "{'num_classes': 4}",
                                        "--input-shape", "N,3,32,32", "-o", "sq.nn"], ["sq.nn", "sq.safetensors"])
    if os.path.exists(os.path.join(d, "sq.nn")):
        res.check("cli default model name is the class's", "model SqueezeNet {" in open(os.path.join(d, "sq.nn")).read(),
                  "no 'model SqueezeNet {'")
    usage = [
        (["cli_nets.py:Net"], 2, "torch2nn.py: error: --input-shape is required: the .nn file's input line needs it "
                                 "(e.g. --input-shape N,3,224,224)\n"),
        (["cli_nets.py:Net", "--input-shape", "1,N,3"], 2, "torch2nn.py: error: --input-shape 1,N,3: dimensions are "
                                                           "positive integers; only the first may be a name (the batch, "
                                                           "e.g. N,3,32,32)\n"),
        (["cli_nets.py:Net", "--input-shape", "N,1,6,6", "--kwargs", "classes=5"], 2,
         "torch2nn.py: error: --kwargs classes=5: not a Python dict literal\n"),
        (["state.pt", "--input-shape", "N,1,6,6"], 1, "torch2nn.py: error: state.pt holds a state_dict, not a module: "
                                                      "give the module's class or factory and pass the file with "
                                                      "--state-dict\n"),
        (["cli_nets.py:Nett", "--input-shape", "N,1,6,6"], 1, "torch2nn.py: error: cli_nets.py:Nett: cli_nets has no "
                                                              "attribute Nett\n"),
        (["cli_nets.py:Net", "--input-shape", "N,3,6,6"], 1, None),
        (["cli_nets.py:Net", "--state-dict", "state.pt", "--input-shape", "N,1,6,6"], 1, None),
    ]
    for args, status, message in usage:
        before = set(os.listdir(d))
        rc, out, err = run_tool(args + ["-o", "u.nn"], d)
        new = set(os.listdir(d)) - before - {"__pycache__"}
        ok = rc == status and not new and (message is None or err == message)
        res.check("cli %s: exit %d" % (" ".join(args), status), ok,
                  "exit %d, new files %s\ngot      %sexpected %s" % (rc, sorted(new), err, message))


def layerc_test_files(d, nn_file, weights, x, y):
    rc, out = layerc("test", nn_file, "--weights", weights, "--input", x, "--expect", y, cwd=d)
    m = ERR_RE.search(out)
    return rc == 0 and "\nPASS" in out, float(m.group(1)) if m else float("nan"), out


# ---------------------------------------------------------------- committed cases (tests/export)

class FireLike(nn.Module):
    """A SqueezeNet Fire module with a squeeze-excitation on its output: cat, mul, blocks in blocks."""

    def __init__(self, cin, squeeze, expand, p=0.1):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.se = SqueezeExcitation(2 * expand, max(1, expand // 2))
        self.drop = StochasticDepth(p, "row")

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        y = torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], 1)
        return self.drop(self.se(y))


class FireNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dNormActivation(3, 8, 3, stride=2, activation_layer=nn.Hardswish)
        self.fire1 = FireLike(8, 4, 6)
        self.fire2 = FireLike(12, 4, 6)
        self.fire3 = FireLike(12, 6, 8)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        x = self.fire1(x)
        x = F.max_pool2d(self.fire2(x) + x, 2, ceil_mode=True)
        x = self.fire3(x)
        x = x.mean((2, 3))
        x = F.dropout(x, 0.2, self.training)
        return F.log_softmax(self.head(x.view(x.size(0), -1)), dim=1)


class TextClassifier(nn.Module):
    """Named children used as a stack (the stack form), token ids in."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(40, 12, padding_idx=0)
        self.lstm = nn.LSTM(12, 10, batch_first=True, bidirectional=True)
        self.norm = nn.LayerNorm(20)
        self.fc = nn.Linear(20, 3)

    def forward(self, x):
        x = self.embed(x)
        x, _ = self.lstm(x)
        x = self.norm(x)
        return self.fc(x[:, -1])


def sequential_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect", bias=False), nn.BatchNorm2d(8, eps=1e-3, momentum=None),
        nn.ReLU6(inplace=True), nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(8, 8, 3, groups=4, dilation=2, padding="same"), nn.LeakyReLU(0.2),
        nn.AvgPool2d(2, count_include_pad=False), nn.Conv2d(8, 12, (1, 3), stride=(1, 2)), nn.GELU(approximate="tanh"),
        nn.AdaptiveAvgPool2d((2, None)), nn.Flatten(), nn.Dropout(0.3), nn.Linear(24, 6), nn.SiLU(), nn.Softmax(dim=1))


def tiny_resnet():
    return graph_goldens.SmallResNet((8, 8, 16, 16), 4)


def tiny_mobilenet():
    return torchvision.models.mobilenet_v2(num_classes=4, width_mult=0.25,
                                           inverted_residual_setting=[[1, 8, 1, 1], [6, 8, 2, 2], [6, 16, 1, 2]])


# name: (factory, input shape, input dtype, calibrate BatchNorm)
COMMITTED = {
    "sequential_cnn": (sequential_cnn, ["N", 3, 12, 12], "f32", True),
    "text_classifier": (TextClassifier, ["N", 7], "i64", False),
    "tiny_resnet": (tiny_resnet, ["N", 3, 32, 32], "f32", True),
    "tiny_mobilenet": (tiny_mobilenet, ["N", 3, 32, 32], "f32", True),
    "fire_net": (FireNet, ["N", 3, 16, 16], "f32", True),
}


def committed_case(name):
    factory, shape, dtype, calibrate = COMMITTED[name]
    seed = zlib.crc32(name.encode()) & 0x7FFFFFFF
    torch.manual_seed(seed)
    model = factory()
    gen = torch.Generator().manual_seed(seed + 1)
    concrete = [2 if isinstance(d, str) else d for d in shape]
    if dtype == "i64":
        x = torch.randint(0, 40, concrete, generator=gen)
        x[0, 0] = 0
    else:
        x = torch.randn(concrete, generator=gen)
    perturb(model, torch.Generator().manual_seed(seed + 2))
    graph_goldens.perturb_zero_biases(model, torch.Generator().manual_seed(seed + 3))
    if calibrate:
        graph_goldens.calibrate_batchnorm(model, concrete, 1.0, torch.Generator().manual_seed(seed + 4))
    model.eval()
    r = torch2nn.export(model, [shape], [dtype], source="tools/test_torch2nn.py: %s" % name, layerc=LAYERC,
                        inputs=[x])
    y = golden_of(model, [x])
    files = {"model.nn": r.text.encode(), "weights.safetensors": torch2nn.safetensors_bytes(r.state),
             "input.npy": npy_bytes(x.numpy()), "expected.npy": npy_bytes(y.numpy()),
             "case.json": (json.dumps({"atol": 1e-4, "rtol": 1e-4, "batch": 2, "seed": seed,
                                       "generator": "tools/test_torch2nn.py"}, indent=1) + "\n").encode()}
    return files


def _tensors(name, blob):
    """The float tensors of a .safetensors or .npy file's bytes, by key."""
    if name.endswith(".npy"):
        return {"": np.load(io.BytesIO(blob))}
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    out = {}
    for key, t in header.items():
        if key == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        dtype = {"F32": "<f4", "I64": "<i8"}[t["dtype"]]
        out[key] = np.frombuffer(data[lo:hi], dtype=dtype).reshape(t["shape"])
    return out


def same_committed(name, old, new):
    """Whether a committed file still holds what the exporter writes: the same bytes; for the weights
    and PyTorch's output, which come from PyTorch's arithmetic (the BatchNorm calibration, the forward)
    and so differ in the last bits between BLAS builds and CPUs, the same keys and shapes and values
    within 1e-5 relative."""
    if old == new:
        return True
    if name not in ("weights.safetensors", "expected.npy"):
        return False
    a, b = _tensors(name, old), _tensors(name, new)
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and
                                        np.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


def test_committed(res, update):
    total = 0
    for name in sorted(COMMITTED):
        d = os.path.join(EXPORT_DIR, name)
        try:
            files = committed_case(name)
        except torch2nn.ExportError as e:
            res.fail("committed " + name, str(e))
            continue
        total += sum(len(b) for b in files.values())
        if update:
            os.makedirs(d, exist_ok=True)
            for f, blob in files.items():
                with open(os.path.join(d, f), "wb") as fh:
                    fh.write(blob)
        stale = [f for f, blob in files.items()
                 if not os.path.exists(os.path.join(d, f)) or
                 not same_committed(f, open(os.path.join(d, f), "rb").read(), blob)]
        res.check("committed %s is what the exporter writes" % name, not stale,
                  "differs: %s (rerun with --update committed and review)" % ", ".join(stale))
        passed, err, out = layerc_test(d)
        res.check("committed %s: layerc test" % name, passed, out[-1500:])
    print("committed: %d cases, %.0f KB" % (len(COMMITTED), total / 1024))


# ---------------------------------------------------------------- main

SECTIONS = ["refusals", "cli", "committed", "stack-goldens", "graph-goldens", "examples", "torchvision"]


def main(argv):
    ap = argparse.ArgumentParser(description="Test tools/torch2nn.py against live PyTorch.")
    ap.add_argument("sections", nargs="*", help="of: %s (default: all)" % " ".join(SECTIONS))
    ap.add_argument("--update", action="store_true", help="rewrite tests/export (section committed)")
    ap.add_argument("--models", help="torchvision models to run (comma-separated; default all)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        ap.error("unknown sections %s" % unknown)
    if not os.access(LAYERC, os.X_OK):
        print("error: %s is not built (run make)" % LAYERC, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    res = Results(args.verbose)
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.sections or SECTIONS:
            t0 = time.time()
            if s == "refusals":
                test_refusals(res, tmp)
            elif s == "cli":
                test_cli(res, tmp)
            elif s == "committed":
                test_committed(res, args.update)
            elif s == "stack-goldens":
                test_stack_goldens(res, tmp, args.jobs)
            elif s == "graph-goldens":
                test_graph_goldens(res, tmp, args.jobs)
            elif s == "examples":
                test_examples(res, tmp)
            elif s == "torchvision":
                test_torchvision(res, tmp, args.models.split(",") if args.models else None)
            print("%s: %.0f s" % (s, time.time() - t0), file=sys.stderr)
    print("%d passed, %d failed" % (res.passed, res.failed))
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
