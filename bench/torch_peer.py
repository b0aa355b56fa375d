#!/usr/bin/python3
"""PyTorch side of the peers benchmark (bench/run_all.sh -> bench/peers.py).

Run with Debian's interpreter, which has python3-torch 1.13 (the python3 on
PATH may not):

  /usr/bin/python3 bench/torch_peer.py prepare MODEL.nn DIR --batches 1 64 [--seed S] [--onnx] [--torchvision NAME]
      Builds the model from the .nn file (the independent parser of
      tools/gen_shape_goldens.py, the Stack/perturb/safetensors helpers of
      tools/gen_output_goldens.py: torch.manual_seed(S), PyTorch's default
      initialisation, BatchNorm statistics and affine parameters perturbed so
      that folding them is tested) -- or, with --torchvision NAME, takes
      torchvision's own model torchvision.models.NAME() (resnet18,
      mobilenet_v2: the real modules, in eval mode, torchvision's
      initialisation, BatchNorm perturbed the same way; the .nn file writes
      the same model with the same state_dict keys, so layerc loads these
      weights unchanged; its input is [N, 3, 224, 224]) -- and writes into DIR:
        weights.safetensors    the state_dict (what layerc gets with --weights)
        x_B.npy, ref_B.npy     per batch B: the input and PyTorch's eager
                               float32 output with 1 thread (the reference every
                               engine is checked against).  An f32 input is
                               randn; an i64 input (token ids) is randint(0,
                               num_embeddings of the first layer, an Embedding),
                               saved as int64
        model_B.onnx           (--onnx) torch.onnx.export of the model at batch B
                               (static shapes, opset 13, constant folding; with
                               autograd on, so that TransformerEncoderLayer takes
                               its exportable path, not the fused inference one);
                               an i64 model's ONNX input is int64
        conv.json, w.f32, b.f32, x_B.f32
                               when the model is a single Conv2d: its shape and
                               raw tensors for bench/onednn_conv.c
      and prints one JSON object: per batch the MACs that land on zero padding
      (taps of a Conv2d whose input position is in the padding), PyTorch's
      float32-vs-float64 error of the reference, the ONNX export status ("ok"
      or why the export failed: the ORT row says so).

  /usr/bin/python3 bench/torch_peer.py time MODEL.nn DIR --batch B --threads T [--min-time S] [--torchvision NAME]
      Loads weights.safetensors into the rebuilt model, torch.set_num_threads(T),
      checks and times, on x_B.npy (float32, or int64 token ids), (a) eager
      mode under torch.no_grad() and (b) traced + frozen:
      torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(
      model.eval(), x))).  Each output is compared with
      ref_B.npy (|y - ref| <= 1e-4 + 1e-4 |ref|, numpy's allclose rule) before
      timing.  Timing as `layerc bench`: a warm-up of a tenth of the time (at
      least 2 runs), then runs until S seconds and at least --min-runs runs;
      median, min and p90.  PEAK_GATE (set by peers.py) names a command that
      must succeed right before each timed loop (bench/peak.c with T threads
      reaching ~T x the 1-thread peak: the CPUs are not busy with other
      work); when it fails, the measurement is skipped.  PEAK_POST (one
      quick test) runs right after it: when the CPUs got busy meanwhile, the
      measurement is repeated once (then kept, with a note); so it is when the
      median run is over SPREAD_MAX x the fastest.
      Prints one JSON object {"eager": {...}, "frozen": {...}}.
"""

import argparse
import copy
import json
import os
import sys
import time
import warnings

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from gen_shape_goldens import build, parse_nn  # noqa: E402
from gen_output_goldens import Stack, perturb, read_safetensors, safetensors_bytes  # noqa: E402
from peer_common import ATOL, RTOL, measure  # noqa: E402

warnings.filterwarnings("ignore", message="Lazy modules are a new feature")
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)


INPUT_DTYPES = ("f32", "i64")                   # activations, token ids
ONNX_OPSET = 13


TORCHVISION_INPUT = ["N", 3, 224, 224]


def load_model(nn_path, torchvision_name=None):
    """(model name, input dtype, input dims, the eval-mode Stack) of a .nn file; with torchvision_name,
    torchvision.models.<name>() in eval mode (the model the .nn file writes)."""
    if torchvision_name:
        import torchvision  # noqa: E402 - only these models need it
        model = getattr(torchvision.models, torchvision_name)()
        model.eval()
        return torchvision_name, "f32", list(TORCHVISION_INPUT), model
    with open(nn_path) as f:
        text = f.read()
    name, _, dtype, dims, layers = parse_nn(text, nn_path)
    if dtype not in INPUT_DTYPES:
        raise SystemExit("torch_peer: %s: %s inputs are not benchmarked (only %s)"
                         % (nn_path, dtype, ", ".join(INPUT_DTYPES)))
    mods = build(layers)
    model = Stack([l[0] for l in layers], mods)
    model.eval()
    return name, dtype, dims, model


def random_input(dtype, shape, model, gen):
    """randn for f32; for i64, token ids valid for the first layer (an Embedding)."""
    if dtype == "f32":
        return torch.randn(shape, generator=gen)
    first = next(model.children())
    if not isinstance(first, nn.Embedding):
        raise SystemExit("torch_peer: an i64 input needs an Embedding first, not %s" % type(first).__name__)
    return torch.randint(0, first.num_embeddings, shape, generator=gen)


def in_float64(x):
    """The input of the float64 copy of the model: token ids stay integers."""
    return x.double() if x.is_floating_point() else x


def export_onnx(model, x, path):
    """torch.onnx.export at x's (static) shape; "ok" or why it failed."""
    try:
        # Autograd on: under no_grad TransformerEncoderLayer runs its fused fast path
        # (aten::_transformer_encoder_layer_fwd), which has no ONNX symbolic.
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, x, path, input_names=["x"], output_names=["y"],
                              opset_version=ONNX_OPSET, do_constant_folding=True)
        return "ok"
    except Exception as e:  # noqa: BLE001 - reported, the ORT rows are skipped
        return "torch.onnx.export (opset %d) failed: %s: %s" % (
            ONNX_OPSET, type(e).__name__, str(e).splitlines()[0][:200])


def batches_of(dims, wanted):
    """The batches to run: the wanted ones for a named batch, else the fixed one."""
    return list(wanted) if isinstance(dims[0], str) else [dims[0]]


def input_shape(dims, batch):
    return [batch if isinstance(d, str) else d for d in dims]


def padded_macs(model, x):
    """MACs of the model's zero-padded Conv2d taps that land on padding."""
    total = [0]

    def count(o_size, i_size, k, s, p, d):
        valid = 0
        for o in range(o_size):
            for t in range(k):
                pos = o * s - p + t * d
                valid += 0 <= pos < i_size
        return valid

    def hook(mod, inp, out):
        if mod.padding_mode != "zeros":
            return                                 # reflect etc.: the taps do real work
        n, c, h, w = inp[0].shape
        oh, ow = out.shape[2], out.shape[3]
        kh, kw = mod.kernel_size
        pad = mod._reversed_padding_repeated_twice   # (w_left, w_right, h_top, h_bottom)
        if isinstance(mod.padding, str):
            ph, pw = pad[2], pad[0]
        else:
            ph, pw = mod.padding
        vh = count(oh, h, kh, mod.stride[0], ph, mod.dilation[0])
        vw = count(ow, w, kw, mod.stride[1], pw, mod.dilation[1])
        per_tap = n * mod.out_channels * (c // mod.groups)
        total[0] += per_tap * (oh * ow * kh * kw - vh * vw)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0]


def prepare(args):
    torch.set_num_threads(1)
    os.makedirs(args.dir, exist_ok=True)
    torch.manual_seed(args.seed)
    name, dtype, dims, model = load_model(args.model, args.torchvision)
    batches = batches_of(dims, args.batches)
    gen = torch.Generator().manual_seed(args.seed + 1)
    xs = {b: random_input(dtype, input_shape(dims, b), model, gen) for b in batches}
    with torch.no_grad():
        model(xs[batches[0]])                 # materialise lazy modules
    perturb(model, torch.Generator().manual_seed(args.seed + 2))
    state = model.state_dict()
    with open(os.path.join(args.dir, "weights.safetensors"), "wb") as f:
        f.write(safetensors_bytes(state))
    info = {"model": name, "batches": {}}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    single_conv = len(list(model.children())) == 1 and len(convs) == 1
    if single_conv:
        c = convs[0]
        if (c.groups != 1 or c.dilation != (1, 1) or c.stride[0] != c.stride[1] or isinstance(c.padding, str)
                or c.padding[0] != c.padding[1] or c.bias is None or c.padding_mode != "zeros"):
            single_conv = False
        else:
            c.weight.detach().numpy().astype("<f4").tofile(os.path.join(args.dir, "w.f32"))
            c.bias.detach().numpy().astype("<f4").tofile(os.path.join(args.dir, "b.f32"))
            info["conv"] = {"in_channels": c.in_channels, "out_channels": c.out_channels,
                            "kernel": list(c.kernel_size), "stride": c.stride[0], "padding": c.padding[0]}
    m64 = copy.deepcopy(model).double()        # PyTorch's own float32 error, for the record
    for b in batches:
        x = xs[b]
        with torch.no_grad():
            y = model(x).contiguous()
            y64 = m64(in_float64(x))
        np.save(os.path.join(args.dir, "x_%d.npy" % b), x.numpy())
        np.save(os.path.join(args.dir, "ref_%d.npy" % b), y.numpy())
        err = (y.double() - y64).abs()
        rec = {"input": list(x.shape), "output": list(y.shape),
               "padded_macs": padded_macs(model, x),
               "f32_vs_f64_max_abs": float(err.max()),
               "f32_vs_f64_tol_used": float((err / (ATOL + RTOL * y64.abs())).max())}
        if single_conv:
            x.numpy().astype("<f4").tofile(os.path.join(args.dir, "x_%d.f32" % b))
            info["conv"]["shape_%d" % b] = ",".join(str(v) for v in (
                x.shape[0], x.shape[1], x.shape[2], x.shape[3], convs[0].out_channels,
                convs[0].kernel_size[0], convs[0].kernel_size[1], convs[0].stride[0], convs[0].padding[0]))
        if args.onnx:
            t0 = time.time()
            rec["onnx"] = export_onnx(model, x, os.path.join(args.dir, "model_%d.onnx" % b))
            rec["onnx_seconds"] = round(time.time() - t0, 2)
        info["batches"][str(b)] = rec
    if single_conv:
        with open(os.path.join(args.dir, "conv.json"), "w") as f:
            json.dump(info["conv"], f)
    print(json.dumps(info))


def time_cmd(args):
    torch.set_grad_enabled(False)              # every run below, timed or not, without autograd
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    _, _, _, model = load_model(args.model, args.torchvision)
    x = torch.from_numpy(np.load(os.path.join(args.dir, "x_%d.npy" % args.batch)))
    ref = np.load(os.path.join(args.dir, "ref_%d.npy" % args.batch))
    model(x)                                   # materialise lazy modules before loading
    with open(os.path.join(args.dir, "weights.safetensors"), "rb") as f:
        st = read_safetensors(f.read())
    state = {k: torch.from_numpy(np.array(v)) for k, v in st.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    out = {"threads": args.threads, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    y = model(x)
    out["eager"] = measure(y.numpy(), ref, lambda: model(x), args.min_time, args.min_runs)
    try:
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model.eval(), x)))
        frozen(x)
        frozen(x)                              # the profiling executor optimises on the second run
        y = frozen(x)
        out["frozen"] = measure(y.numpy(), ref, lambda: frozen(x), args.min_time, args.min_runs)
    except Exception as e:  # noqa: BLE001 - reported as a skipped peer
        out["frozen"] = {"skipped": "trace/freeze/optimize_for_inference failed: %s: %s"
                         % (type(e).__name__, str(e).splitlines()[0][:200])}
    print(json.dumps(out))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("model")
    p.add_argument("dir")
    p.add_argument("--batches", type=int, nargs="+", default=[1])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--onnx", action="store_true")
    p.add_argument("--torchvision", default=None)
    t = sub.add_parser("time")
    t.add_argument("model")
    t.add_argument("dir")
    t.add_argument("--batch", type=int, required=True)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--min-time", type=float, default=1.0)
    t.add_argument("--min-runs", type=int, default=10)
    t.add_argument("--torchvision", default=None)
    args = ap.parse_args(argv)
    torch.set_num_interop_threads(1)
    if args.cmd == "prepare":
        prepare(args)
    else:
        time_cmd(args)


if __name__ == "__main__":
    main(sys.argv[1:])
