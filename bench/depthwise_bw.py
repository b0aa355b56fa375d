"""The depthwise convolutions' memory bandwidth (bench/depthwise_bw.sh, `make bench`).

A depthwise convolution (groups = in = out channels) does 2 x kh x kw FLOP per
output and reads each input float about once: it is bound by memory, not by
the FMA units.  This script measures the machine's bandwidth with
bench/stream.c (copy and triad, 1 thread: arrays of 384 MiB, far beyond the L3
cache, and of 6 MiB, the size of MobileNetV2's largest activations, which
stay in the L3 cache between layers) right before and right after timing
every layer of a model (`layerc bench --per-layer`), and reports for each
depthwise layer the bytes it must move (its input and output tensors, its
weights and bias, 4 bytes a float), its time (the fastest of the per-layer
runs, and the median) and so its GB/s, beside the stream figures.  The
bandwidth of the two stream runs is the better of the two (the machine is
shared: a neighbour lowers either).

usage: python3 bench/depthwise_bw.py [MODEL.nn] [--batch B] [--threads T] [--repeat R]
       (default examples/mobilenet_v2.nn, batch 1, 1 thread, 3 repetitions of the per-layer timing,
       the fastest of each layer's minima and the median of its medians kept)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERC = os.environ.get("LAYERC", os.path.join(ROOT, "layerc"))
CC = os.environ.get("CC", "cc")


def stream(binary, threads):
    out = subprocess.run([binary, "--threads", str(threads), "--mib", "384,6", "--reps", "5", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return {r["mib"]: r for r in json.loads(out)["stream"]}


def depthwise_layers(model):
    """name -> bytes per sample (input + output + weight + bias floats, x 4) of every depthwise Conv2d."""
    shapes = json.loads(subprocess.run([LAYERC, "shapes", "--format", "json", model], capture_output=True,
                                       text=True, check=True).stdout)
    out_shape = {shapes["input"]["name"]: shapes["input"]["shape"]} if "name" in shapes["input"] else {}
    for i in shapes.get("inputs", []):
        out_shape[i["name"]] = i["shape"]
    layers = {}

    def numel(shape):
        n = 1
        for d in shape[1:]:     # per sample
            n *= d
        return n

    for l in shapes["layers"]:
        out_shape[l["name"]] = l["output_shape"]
        if l["type"] != "Conv2d":
            continue
        w = next((t for t in l["state_dict"] if t["key"].endswith(".weight")), None)
        if not w or w["shape"][1] != 1 or w["shape"][0] != l["output_shape"][1]:
            continue
        src = l["inputs"][0] if l.get("inputs") else None
        if src not in out_shape or out_shape[src][1] != w["shape"][0]:
            continue                   # groups = in = out channels only
        params = sum(numel([1] + t["shape"]) for t in l["state_dict"])
        layers[l["name"]] = {"bytes": 4 * (numel(out_shape[src]) + numel(l["output_shape"])) + 4 * params,
                             "input": out_shape[src][1:], "output": l["output_shape"][1:],
                             "kernel": w["shape"][2:]}
    return layers


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default=os.path.join(ROOT, "examples", "mobilenet_v2.nn"))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="layerc-dwbw.")
    binary = os.path.join(work, "stream")
    subprocess.run([CC, "-O3", "-march=native", "-pthread", "-o", binary, os.path.join(ROOT, "bench", "stream.c")],
                   check=True)
    dw = depthwise_layers(args.model)
    before = stream(binary, args.threads)
    mins, meds = {}, {}
    for _ in range(args.repeat):
        out = subprocess.run([LAYERC, "bench", args.model, "--per-layer", "--json", "--batch", str(args.batch),
                              "--threads", str(args.threads)], capture_output=True, text=True, check=True).stdout
        for l in json.loads(out)["layers"]:
            first = l["name"].split(" ")[0]
            if first in dw:
                mins.setdefault(first, []).append(l["min_ms"])
                meds.setdefault(first, []).append(l["median_ms"])
    after = stream(binary, args.threads)
    bw = {m: {k: max(before[m][k], after[m][k]) for k in ("copy_gbs", "triad_gbs")} for m in before}
    dram, cache = bw[384], bw[6]
    print("depthwise convolutions of %s, batch %d, %d thread(s)" % (os.path.relpath(args.model, ROOT), args.batch,
                                                                   args.threads))
    print("stream (bench/stream.c, %d thread(s), better of before/after): 384 MiB copy %.1f GB/s, triad %.1f GB/s; "
          "6 MiB copy %.1f GB/s, triad %.1f GB/s" % (args.threads, dram["copy_gbs"], dram["triad_gbs"],
                                                    cache["copy_gbs"], cache["triad_gbs"]))
    print("")
    hdr = ("layer", "input", "output", "kernel", "MB moved", "min ms", "median ms", "GB/s (min)", "GB/s (median)",
           "% DRAM triad", "% 6 MiB triad")
    rows = []
    total_bytes = total_min = total_med = 0.0
    for name, info in dw.items():
        if name not in mins:
            continue
        b = info["bytes"] * args.batch
        mn, md = min(mins[name]), statistics.median(meds[name])
        total_bytes += b
        total_min += mn
        total_med += md
        g_min, g_med = b / mn / 1e6, b / md / 1e6
        rows.append((name, "x".join(str(d) for d in info["input"]), "x".join(str(d) for d in info["output"]),
                     "x".join(str(d) for d in info["kernel"]), "%.2f" % (b / 1e6), "%.4f" % mn, "%.4f" % md,
                     "%.1f" % g_min, "%.1f" % g_med, "%.0f%%" % (100 * g_med / dram["triad_gbs"]),
                     "%.0f%%" % (100 * g_med / cache["triad_gbs"])))
    if total_min:
        rows.append(("all depthwise", "", "", "", "%.2f" % (total_bytes / 1e6), "%.4f" % total_min,
                     "%.4f" % total_med, "%.1f" % (total_bytes / total_min / 1e6),
                     "%.1f" % (total_bytes / total_med / 1e6),
                     "%.0f%%" % (100 * total_bytes / total_med / 1e6 / dram["triad_gbs"]),
                     "%.0f%%" % (100 * total_bytes / total_med / 1e6 / cache["triad_gbs"])))
    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(hdr))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
