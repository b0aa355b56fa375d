"""ONNX Runtime side of the peers benchmark (bench/run_all.sh -> bench/peers.py).

Run with the python3 that has the pip package onnxruntime (the one on PATH:
`python3 -m pip install onnxruntime`); it needs only onnxruntime and numpy.

  python3 bench/ort_peer.py MODEL.onnx X.npy REF.npy --threads T [--min-time S] [--min-runs N]

The model (exported by bench/torch_peer.py with torch.onnx.export) runs on X
as it was saved (float32, or int64 token ids for a model with an i64 input) on
the CPU execution provider with intra_op_num_threads=T, inter_op_num_threads=1,
sequential execution and every graph optimisation (ORT_ENABLE_ALL).  Its
output on X is compared with REF (PyTorch's eager output: |y - ref| <= 1e-4 +
1e-4 |ref|), then it is timed as `layerc bench` times: a warm-up of a tenth of
the time (at least 2 runs), then runs until S seconds and at least N runs;
median, min and p90.  PEAK_GATE (set by peers.py) names a command that must
succeed right before the timed loop (bench/peak.c with T threads reaching ~T x
the 1-thread peak: the CPUs are not busy with other work), else the
measurement is skipped; PEAK_POST (one quick test) runs right after it: when
the CPUs got busy meanwhile, the measurement is repeated once (then kept, with
a note); so it is when the median run is over SPREAD_MAX x the fastest.
Prints one JSON object; {"skipped": why} when onnxruntime is missing or cannot
load or run the model (an operator it lacks, say).
"""

import argparse
import json
import sys

import numpy as np

from peer_common import measure  # noqa: E402


def session(ort, path, threads):
    """An InferenceSession of the CPU provider: `threads` intra-op threads, sequential, every optimisation."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("onnx")
    ap.add_argument("x")
    ap.add_argument("ref")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--min-runs", type=int, default=10)
    args = ap.parse_args(argv)
    try:
        import onnxruntime as ort
    except ImportError as e:
        print(json.dumps({"skipped": "onnxruntime is not installed for %s (%s): python3 -m pip install onnxruntime"
                          % (sys.executable, e)}))
        return 0
    x = np.load(args.x)
    ref = np.load(args.ref)
    try:
        sess = session(ort, args.onnx, args.threads)
        feed = {sess.get_inputs()[0].name: x}
        y = sess.run(None, feed)[0]
    except Exception as e:  # noqa: BLE001 - reported as a skipped peer
        print(json.dumps({"skipped": "ONNX Runtime cannot load or run the export: %s: %s"
                          % (type(e).__name__, str(e).splitlines()[0][:200])}))
        return 0
    out = {"onnxruntime": ort.__version__, "threads": args.threads}
    out.update(measure(y, ref, lambda: sess.run(None, feed), args.min_time, args.min_runs))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
