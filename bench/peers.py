"""The peers benchmark: layerc against PyTorch (eager, traced+frozen), ONNX
Runtime and oneDNN, in one run, with the measured FMA peak of the machine.

Run it through bench/run_all.sh (`make bench`); it needs only numpy.  The
models: every example in examples/ and the models of BENCH_MODELS in bench/
(three single convolutions, conv3x3_64_56, conv3x3_256_14 and conv5x5_32_16;
two sequence models, lstm_classifier with i64 token ids and transformer2).
The batches: a fixed batch as declared; for a named batch (N) the ones its
file lists in a comment line `# bench-batches: 1 32` (lstm_classifier: 1 32,
transformer2: 1 8), else BATCHES (1 and 64), a model over BIG_MACS MACs per
sample (vgg16_bn) at batch 1 only.  Each at 1 and 2 threads.  A model that
`layerc build` refuses ("cannot be compiled yet") keeps its PyTorch and ORT
rows; its layerc row is skipped with layerc's first error line.  What it does:

 1. bench/peak.c: the FP32 FMA peak, 1 and 2 threads (AVX-512 where the CPU has it, else AVX2; 12 chains of
    vfmadd231ps).  The 2-thread peak must be ~2x the 1-thread one (GATE_RATIO,
    default 1.8): the machine is shared.  Right before EVERY measurement (each
    engine, each row, 1 or 2 threads) a short 2-thread peak test runs again
    and must show ~2x the 1-thread peak (GATE_RATIO): neither vCPU is busy
    with other work (a neighbour on the other vCPU slows a 1-thread run too,
    through the shared L3 and memory).  It retries up to GATE_TRIES times,
    GATE_WAIT s apart, while a budget of GATE_BUDGET s of waiting over the
    whole run lasts; when the CPUs stay busy the measurement is skipped, not
    reported.  One quick test right after the measurement: when it fails, or
    when the median run is over SPREAD_MAX (1.15) x the fastest, the
    measurement is repeated once (then kept, with a note).  All 1-thread rows
    run first, then all 2-thread rows.
 2. bench/torch_peer.py prepare (Debian's /usr/bin/python3 with python3-torch
    1.13): the model built from the .nn file, random weights (seeded; BatchNorm
    statistics perturbed) saved as safetensors, a random input per batch and
    PyTorch's eager output (the reference), the ONNX export per batch, the MACs
    that land on zero padding.  An i64 input holds token ids below the first
    Embedding's num_embeddings, saved as int64 .npy: layerc run, PyTorch and ORT
    all get that int64 array.
 3. Per row (model, batch, threads), each engine is first checked on the same
    weights and input against the reference (|y - ref| <= 1e-4 + 1e-4 |ref|),
    then timed (median, min and p90 of many runs after a warm-up; at least
    MIN_TIME seconds and 10 runs):
      layerc         `layerc run --weights W --input X -o Y --threads T`, then
                     `layerc bench --weights W --batch B --threads T --json`
      torch eager    torch.set_num_threads(T), under no_grad
      torch frozen   torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m.eval(), x)))
      ORT            onnxruntime (pip, for the python3 on PATH), intra_op_num_threads=T,
                     sequential execution, ORT_ENABLE_ALL; skipped with the exporter's
                     message when torch.onnx.export (opset 13) fails
      oneDNN direct / winograd   (single convolutions only) bench/onednn_conv.c:
                     format_tag any (blocked layouts), convolution_direct or
                     convolution_winograd (skipped where oneDNN refuses it); the
                     time of the convolution primitive on blocked tensors, the
                     NCHW<->blocked reorders reported beside
 4. The tables: per engine the median ms, the range min-p90, GFLOP/s = 2 x MACs
    x batch / median (MACs: `layerc shapes --format json`
    totals_before_passes.macs, per sample), GFLOP/s counting only the taps that
    do not land on zero padding, % of the measured peak of that thread count
    (of the no-padding GFLOP/s), and peer ms / layerc ms (> 1: layerc faster).

Environment: LAYERC (./layerc), TORCH_PY (/usr/bin/python3), ORT_PY (python3),
CC (cc), MIN_TIME (1 s per measurement), BIG_MIN_TIME (0.5), BIG_MACS (2e9),
THREADS ("1 2"), BATCHES ("1 64", for a named batch without `# bench-batches:`),
ONLY (a regular expression: only the models whose file name matches),
GATE_RATIO (1.8), GATE_TRIES (6), GATE_WAIT (5 s), GATE_BUDGET (300 s),
SPREAD_MAX (1.15), RESULTS (a file: every measurement as one JSON object per
line), KEEP (keep the work directory).
"""

import glob
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from peer_common import BUSY, compare  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERC = os.environ.get("LAYERC", "./layerc")
TORCH_PY = os.environ.get("TORCH_PY", "/usr/bin/python3")
ORT_PY = os.environ.get("ORT_PY", "python3")
CC = os.environ.get("CC", "cc")
MIN_TIME = float(os.environ.get("MIN_TIME", "1"))
BIG_MIN_TIME = float(os.environ.get("BIG_MIN_TIME", "0.5"))
BIG_MACS = float(os.environ.get("BIG_MACS", "2e9"))
THREADS = [int(t) for t in os.environ.get("THREADS", "1 2").split()]
BATCHES = [int(b) for b in os.environ.get("BATCHES", "1 64").split()]
ONLY = os.environ.get("ONLY", "")
GATE_RATIO = float(os.environ.get("GATE_RATIO", "1.8"))
GATE_TRIES = int(os.environ.get("GATE_TRIES", "6"))
GATE_WAIT = float(os.environ.get("GATE_WAIT", "5"))
GATE_BUDGET = float(os.environ.get("GATE_BUDGET", "300"))
SPREAD_MAX = float(os.environ.get("SPREAD_MAX", "1.15"))
RESULTS = os.environ.get("RESULTS", "")
ATOL = RTOL = 1e-4
BENCH_MODELS = ["conv3x3_64_56.nn", "conv3x3_256_14.nn", "conv5x5_32_16.nn",   # in bench/, after examples/
                "lstm_classifier.nn", "transformer2.nn"]
# The examples that write torchvision's models: their peers are torchvision's own modules
# (torch_peer.py --torchvision), at these batches (IMAGENET_BATCHES overrides them).
TORCHVISION = {"resnet18": "resnet18", "mobilenet_v2": "mobilenet_v2"}
IMAGENET_BATCHES = [int(b) for b in os.environ.get("IMAGENET_BATCHES", "1 16").split()]
BENCH_BATCHES = re.compile(r"^\s*#\s*bench-batches:\s*([0-9 ]+?)\s*$", re.M)
ENGINES = ["layerc", "torch eager", "torch frozen", "ORT", "oneDNN direct", "oneDNN winograd"]
SHORT = {"torch eager": "eager", "torch frozen": "frozen", "ORT": "ORT",
         "oneDNN direct": "dnnl direct", "oneDNN winograd": "dnnl wino"}

T_START = time.time()
LOAD0 = "%.2f %.2f %.2f" % os.getloadavg()


def log(msg):
    print("[%5.0fs] %s" % (time.time() - T_START, msg), file=sys.stderr, flush=True)


def run(cmd, env=None, timeout=1200):
    """Run a command (list); return (returncode, stdout, stderr)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    for attempt in range(5):
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        except FileNotFoundError as e:
            return 127, "", str(e)
        except subprocess.TimeoutExpired:
            return 124, "", "timed out after %d s" % timeout
        except OSError as e:              # e.g. a binary being rewritten by a concurrent build: retry
            err = str(e)
            time.sleep(2)
    return 126, "", err


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip()[:300] if lines else "(no message)"


def first_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[0].strip()[:300] if lines else "(no message)"




class Bench:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="layerc-peers.")
        self.rows = []            # one per (model, batch, threads)
        self.models = []          # the models' header lines
        self.skipped = []         # (what, why)
        self.gates = []           # every gate test: (threads, GFLOP/s, passed)
        self.gate_waited = 0.0    # seconds spent waiting for free CPUs, against GATE_BUDGET
        self.results = open(RESULTS, "w") if RESULTS else None
        self.peak = {}

    # ------------------------------------------------------------ set-up

    def setup(self):
        global LAYERC
        rc, out, err = run([LAYERC, "--version"])
        if rc != 0:
            sys.exit("peers: %s does not run (build it with make): %s" % (LAYERC, first_line(err)))
        self.layerc_version = out.strip()
        rc, out, _ = run(["git", "log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M"])
        if rc == 0:
            rc2, dirty, _ = run(["git", "status", "--porcelain", "--untracked-files=no", "--", "compiler", "runtime",
                                 "grammar"])
            self.layerc_version += ", commit %s%s" % (out.strip(), " + uncommitted changes" if dirty.strip() else "")
        # a snapshot of the compiler, so that a rebuild during the run does not change what is measured
        snap = os.path.join(self.work, "layerc")
        shutil.copy2(os.path.join(ROOT, LAYERC) if not os.path.isabs(LAYERC) else LAYERC, snap)
        LAYERC = snap
        self.peak_bin = os.path.join(self.work, "peak")
        rc, _, err = run([CC, "-O2", "-mavx2", "-mfma", "-pthread", "-o", self.peak_bin, "bench/peak.c"])
        if rc != 0:
            sys.exit("peers: cannot build bench/peak.c: %s" % first_line(err))
        self.dnnl_bin = os.path.join(self.work, "onednn_conv")
        rc, _, err = run([CC, "-O2", "-fopenmp", "-o", self.dnnl_bin, "bench/onednn_conv.c", "-ldnnl"])
        if rc != 0:
            self.dnnl_bin = None
            self.skipped.append(("oneDNN (all rows)", "bench/onednn_conv.c does not build (%s): "
                                 "apt-get install libdnnl-dev" % first_line(err)))
        rc, out, err = run([TORCH_PY, "-c", "import torch, numpy; print(torch.__version__)"])
        self.torch_version = out.strip() if rc == 0 else None
        if rc != 0:
            self.skipped.append(("PyTorch, ONNX export, every check (all rows)",
                                 "%s cannot import torch and numpy (%s): apt-get install python3-torch"
                                 % (TORCH_PY, last_line(err))))
        rc, out, err = run([ORT_PY, "-c", "import onnxruntime, numpy; print(onnxruntime.__version__)"])
        self.ort_version = out.strip() if rc == 0 else None
        if rc != 0:
            self.skipped.append(("ORT (all rows)", "%s cannot import onnxruntime (%s): "
                                 "python3 -m pip install onnxruntime" % (ORT_PY, last_line(err))))
        self.dnnl_version = None
        if self.dnnl_bin:
            rc, out, _ = run([self.dnnl_bin, "--alg", "direct", "--shape", "1,8,8,8,8,3,3,1,1", "--min-time", "0"],
                             env={"OMP_NUM_THREADS": "1"})
            info = last_json(out) or {}
            self.dnnl_version = "%s (%s)" % (info.get("version", "?"), info.get("impl", "?"))

    def measure_peak(self):
        """The peak of 1 and 2 threads at the start (up to 3 tries while the 2-thread one is not ~2x: the
        1-thread rows come first and do not need it; every 2-thread measurement has its own gate).  The
        1-thread peak the gates use is the best 1-thread median seen (the least disturbed), here and in
        every later 1-thread gate test."""
        tries = []
        for attempt in range(1, 4):
            counts = sorted(set(THREADS) | {1})  # the 1-thread peak is always needed (% peak, the gates)
            rc, out, err = run([self.peak_bin, "--threads", ",".join(str(t) for t in counts),
                                "--seconds", "0.3", "--reps", "5", "--json"])
            info = last_json(out)
            if not info:
                sys.exit("peers: bench/peak.c failed: %s" % first_line(err))
            self.peak_isa = info.get("isa", "AVX2")
            p = {e["threads"]: e for e in info["peak"]}
            tries.append(p)
            ratio = p[max(p)]["gflops"] / p[1]["gflops"] if 1 in p and max(p) > 1 else None
            log("FMA peak: " + ", ".join("%d thread(s) %.1f GFLOP/s (%.1f-%.1f)" % (t, e["gflops"], e["min"], e["max"])
                                         for t, e in sorted(p.items()))
                + (", ratio %.2fx" % ratio if ratio else ""))
            if ratio is None or ratio >= GATE_RATIO or attempt == 3:
                break
            log("the CPUs look busy; waiting %.0f s (try %d/3)" % (GATE_WAIT, attempt))
            time.sleep(GATE_WAIT)
            self.gate_waited += GATE_WAIT
        self.peak = {1: max(p[1]["gflops"] for p in tries)}
        for p in tries:
            for t, e in p.items():
                self.gates.append((t, e["gflops"], e["gflops"] >= GATE_RATIO / 2 * t * self.peak[1], "initial"))
        self.peak_info = tries[-1]
        self.peak_tries = len(tries)
        self.peak_ratio = (tries[-1][max(tries[-1])]["gflops"] / tries[-1][1]["gflops"]) if len(tries[-1]) > 1 else None

    def peak_for(self, threads):
        """The peak a measurement with `threads` threads is compared with: the median of every peak test
        with that many threads that passed the gate (the first tests, and the gates right before and after
        the measurements)."""
        ok = [g for t, g, passed, _ in self.gates if t == threads and passed]
        return statistics.median(ok) if ok else None

    def gate(self, threads, tries=None):
        """Right before (and after) a measurement: True when the peak test with `threads` threads reaches
        ~threads x the 1-thread peak, i.e. no other work shares the CPUs."""
        rc, out, _ = run(shlex.split(self.gate_cmd(threads, tries)))
        info = last_json(out)
        self.note_gate(info)
        return rc == 0, info

    def note_gate(self, info):
        """Record a gate test's result (run here or in a worker) and the time it waited."""
        if not info or "peak" not in info:
            return
        e = info["peak"][-1]
        self.gates.append((e["threads"], e["gflops"], bool(info.get("passed")), "gate"))
        if e["threads"] == 1 and e["gflops"] > self.peak[1]:
            self.peak[1] = e["gflops"]         # the gates' reference: the best 1-thread peak seen
        self.gate_waited += (info.get("tries", 1) - 1) * GATE_WAIT

    def gate_cmd(self, threads, tries=None):
        """The gate, whatever the measurement's threads: max(THREADS) threads (2) must reach
        GATE_RATIO/2 x that x the 1-thread peak, i.e. no other work on either vCPU (a 1-thread
        measurement is disturbed too by a neighbour on the other vCPU: the L3 and the memory are shared).
        It retries while the budget of waiting (GATE_BUDGET s over the whole run) lasts."""
        threads = max(THREADS)
        need = GATE_RATIO / 2 * threads * self.peak[1]
        left = max(0.0, GATE_BUDGET - self.gate_waited)
        if tries is None:
            tries = 1 + min(GATE_TRIES - 1, int(left // GATE_WAIT)) if GATE_WAIT > 0 else GATE_TRIES
        return "%s --threads %d --seconds 0.1 --reps 3 --json --min-gflops %.2f --tries %d --wait %g" % (
            shlex.quote(self.peak_bin), threads, need, tries, GATE_WAIT)

    def gate_env(self, threads):
        return {"PEAK_GATE": self.gate_cmd(threads), "PEAK_POST": self.gate_cmd(threads, tries=1),
                "SPREAD_MAX": str(SPREAD_MAX)}

    def gated(self, threads, measure):
        """measure() between a gate and a post-check; measured again once when the CPUs got busy
        meanwhile.  measure returns a record with median_ms, or with skipped."""
        rec = None
        for attempt in (1, 2):
            ok, info = self.gate(threads)
            if not ok:
                if rec is None:
                    return {"gates": [info], "skipped": BUSY}
                rec["note"] = ((rec.get("note", "") + "; ") if rec.get("note") else "") + \
                    "CPUs busy at the end of the measurement (and still busy after it)"
                return rec
            gates = (rec or {}).get("gates", []) + [info]
            rec = measure()
            rec["gates"] = gates
            if "median_ms" not in rec:
                return rec
            ok, info = self.gate(threads, tries=1)
            rec["gates"].append(info)
            spread = rec["median_ms"] / rec["min_ms"] if rec.get("min_ms") else 1.0
            if ok and spread <= SPREAD_MAX:
                return rec
            why = ("the CPUs got busy during the measurement" if not ok else
                   "the runs spread (median %.2fx the fastest)" % spread)
            log(why + (": measuring again" if attempt == 1 else " again: keeping it, with a note"))
        rec["note"] = ((rec.get("note", "") + "; ") if rec.get("note") else "") + \
            ("CPUs busy at the end of the measurement, twice" if not ok else
             "runs spread twice (median %.2fx the fastest)" % spread)
        return rec

    # ------------------------------------------------------------ one model

    def model_list(self):
        files = sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn")))
        files += [os.path.join(ROOT, "bench", f) for f in BENCH_MODELS]
        files = [os.path.relpath(f, ROOT) for f in files]
        return [f for f in files if not ONLY or re.search(ONLY, f)]

    def layerc_refusal(self, nn):
        """None when `layerc build` compiles the model, else its first error line (the back end
        refuses what it does not lower early; PyTorch and ORT are measured all the same)."""
        probe = os.path.join(self.work, "probe.so")
        rc, _, err = run([LAYERC, "build", nn, "-o", probe])
        if os.path.exists(probe):
            os.remove(probe)
        return None if rc == 0 else "layerc does not compile it: " + first_line(err)

    def prepare_model(self, nn):
        """layerc shapes, a probe build, PyTorch's weights/inputs/references/ONNX; None when skipped."""
        stem = os.path.splitext(os.path.basename(nn))[0]
        rc, out, err = run([LAYERC, "shapes", "--format", "json", nn])
        if rc != 0:
            self.skipped.append((stem, "layerc shapes failed: " + first_line(err)))
            return
        shapes = json.loads(out)
        dims = shapes["input"]["shape"]
        named = isinstance(dims[0], str)
        macs = shapes["totals_before_passes"]["macs"]
        macs_per_sample = macs if named else macs / dims[0]
        big = macs_per_sample > BIG_MACS
        batches = (declared_batches(nn) or ([1] if big else BATCHES)) if named else [dims[0]]
        tv = TORCHVISION.get(stem)
        tv_args = ["--torchvision", tv] if tv else []
        if tv:
            batches = IMAGENET_BATCHES
        min_time = BIG_MIN_TIME if big else MIN_TIME
        min_runs = 5 if big else 10
        log("%s: layerc build (probe)" % stem)
        refusal = self.layerc_refusal(nn)
        d = os.path.join(self.work, stem)
        prep = None
        if self.torch_version:
            log("%s: PyTorch model, weights, inputs, references, ONNX (batches %s)" % (stem, batches))
            rc, out, err = run([TORCH_PY, "bench/torch_peer.py", "prepare", nn, d, "--batches"]
                               + [str(b) for b in batches] + ["--onnx"] + tv_args)
            prep = last_json(out) if rc == 0 else None
            if not prep:
                self.skipped.append((stem + " (PyTorch, ORT, oneDNN, checks)",
                                     "torch_peer.py prepare failed: " + last_line(err)))
        padded_ps = None
        if prep:
            b0 = str(batches[0])
            padded_ps = prep["batches"][b0]["padded_macs"] / batches[0]
        self.models.append({"model": stem, "file": nn, "input": dims, "macs_per_sample": macs_per_sample,
                            "valid_macs_per_sample": macs_per_sample - padded_ps if padded_ps is not None else None,
                            "batches": batches,
                            "f32_vs_f64": max(b["f32_vs_f64_max_abs"] for b in prep["batches"].values()) if prep else None})
        conv = prep.get("conv") if prep else None
        return dict(nn=nn, stem=stem, d=d, prep=prep, conv=conv, named=named, batches=batches,
                    macs_ps=macs_per_sample, min_time=min_time, min_runs=min_runs, refusal=refusal, tv_args=tv_args)

    def layerc_record(self, nn, d, prep, refusal, named, batch, threads, ref, min_time):
        """layerc's record of a row: checked (layerc run on the reference's input), then timed
        (layerc bench); skipped when layerc refuses the model."""
        if refusal:
            return {"skipped": refusal}
        rec = {}
        weights = os.path.join(d, "weights.safetensors")
        if prep:
            y_npy = os.path.join(d, "y_layerc.npy")
            rc, _, err = run([LAYERC, "run", nn, "--weights", weights, "--input", os.path.join(d, "x_%d.npy" % batch),
                              "-o", y_npy, "--threads", str(threads)])
            if rc != 0:
                rec["check"] = {"ok": False, "detail": "layerc run failed: " + first_line(err)}
            else:
                rec["check"] = compare(np.load(y_npy), ref)
            if not rec["check"]["ok"]:
                rec["skipped"] = "output differs from PyTorch's"
                return rec

        def bench():
            cmd = [LAYERC, "bench", nn, "--json", "--threads", str(threads), "--min-time", str(min_time)]
            if prep:
                cmd += ["--weights", weights]
            if named:
                cmd += ["--batch", str(batch)]
            rc, out, err = run(cmd)
            try:                   # layerc bench --json prints one indented object
                j = json.loads(out) if rc == 0 else None
            except ValueError:
                j = None
            if j is None:
                return {"skipped": "layerc bench failed: " + first_line(err or out)}
            return {k: j[k] for k in ("median_ms", "min_ms", "p90_ms", "runs")}
        rec.update(self.gated(threads, bench))
        return rec

    def torch_records(self, nn, d, batch, threads, min_time, min_runs, tv_args):
        """PyTorch eager's and frozen's records of a row (torch_peer.py time: checked, gated, timed)."""
        rc, out, err = run([TORCH_PY, "bench/torch_peer.py", "time", nn, d, "--batch", str(batch),
                            "--threads", str(threads), "--min-time", str(min_time),
                            "--min-runs", str(min_runs)] + tv_args, env=self.gate_env(threads))
        j = last_json(out) if rc == 0 else None
        if j is None:
            why = "torch_peer.py time failed: " + last_line(err)
            return {"torch eager": {"skipped": why}, "torch frozen": {"skipped": why}}
        recs = {"torch eager": j["eager"], "torch frozen": j["frozen"]}
        for rec in recs.values():
            for info in rec.get("gates", []):
                self.note_gate(info)
            if j.get("torch_threads") != threads:
                rec["note"] = "torch runs %s threads" % j.get("torch_threads")
        return recs

    def ort_record(self, d, onnx_status, batch, threads, min_time, min_runs):
        """ONNX Runtime's record of a row (ort_peer.py on the export of that batch); skipped, with
        the exporter's message, when torch.onnx.export failed."""
        if onnx_status != "ok":
            return {"skipped": onnx_status or "no ONNX file"}
        rc, out, err = run([ORT_PY, "bench/ort_peer.py", os.path.join(d, "model_%d.onnx" % batch),
                            os.path.join(d, "x_%d.npy" % batch), os.path.join(d, "ref_%d.npy" % batch),
                            "--threads", str(threads), "--min-time", str(min_time), "--min-runs", str(min_runs)],
                           env=self.gate_env(threads))
        rec = (last_json(out) if rc == 0 else None) or {"skipped": "ort_peer.py failed: " + last_line(err)}
        for info in rec.get("gates", []):
            self.note_gate(info)
        return rec

    def onednn_record(self, alg, d, conv, batch, threads, ref, min_time):
        """One oneDNN measurement of a single convolution, in one process: the output of a first
        run (checked here), then the timing."""
        y_f32 = os.path.join(d, "y_dnnl.f32")
        if os.path.exists(y_f32):
            os.remove(y_f32)
        rc, out, err = run([self.dnnl_bin, "--alg", alg, "--shape", conv["shape_%d" % batch],
                            "--threads", str(threads), "--min-time", str(min_time),
                            "--input", os.path.join(d, "x_%d.f32" % batch),
                            "--weights", os.path.join(d, "w.f32"), "--bias", os.path.join(d, "b.f32"),
                            "--output", y_f32], env={"OMP_NUM_THREADS": str(threads)})
        j = last_json(out)
        if rc == 3 and j:
            return {"skipped": j["skipped"]}
        if rc != 0 or not j:
            return {"skipped": "onednn_conv failed: " + first_line(err)}
        y = np.fromfile(y_f32, dtype="<f4").reshape(ref.shape)
        j["check"] = compare(y, ref)
        if not j["check"]["ok"]:
            for k in ("median_ms", "min_ms", "p90_ms"):
                j.pop(k, None)
            j["skipped"] = "output differs from PyTorch's"
        j["note"] = "%s, src %s, weights %s; +reorders %.3f ms" % (
            j["impl"], j["src_layout"], j["weights_layout"], j["with_reorders"]["median_ms"])
        return j

    def do_row(self, nn, stem, d, prep, conv, named, batches, batch, threads, macs_ps, min_time, min_runs,
               refusal, tv_args):
        row = {"model": stem, "batch": batch, "threads": threads, "engines": {}}
        row["macs"] = macs_ps * batch
        row["valid_macs"] = (row["macs"] - prep["batches"][str(batch)]["padded_macs"]) if prep else None
        eng = row["engines"]
        tag = "%s batch %d, %d thread(s)" % (stem, batch, threads)
        ref = np.load(os.path.join(d, "ref_%d.npy" % batch)) if prep else None
        log("%s: layerc" % tag)
        eng["layerc"] = self.layerc_record(nn, d, prep, refusal, named, batch, threads, ref, min_time)
        if prep:
            log("%s: PyTorch eager, frozen" % tag)
            eng.update(self.torch_records(nn, d, batch, threads, min_time, min_runs, tv_args))
        if prep and self.ort_version:
            log("%s: ONNX Runtime" % tag)
            eng["ORT"] = self.ort_record(d, prep["batches"][str(batch)].get("onnx"), batch, threads,
                                         min_time, min_runs)
        if conv and self.dnnl_bin:           # single convolutions only
            for alg in ("direct", "winograd"):
                log("%s: oneDNN %s" % (tag, alg))
                eng["oneDNN " + alg] = self.gated(
                    threads, lambda alg=alg: self.onednn_record(alg, d, conv, batch, threads, ref, min_time))
        self.rows.append(row)
        if self.results:
            self.results.write(json.dumps(row) + "\n")
            self.results.flush()
        log("%s: " % tag + ", ".join("%s %s" % (k, ("%.3f ms" % v["median_ms"]) if "median_ms" in v else "skipped")
                                     for k, v in eng.items()))

    # ------------------------------------------------------------ the tables

    def report(self):
        out = []
        p = out.append
        p("")
        p("layerc peers benchmark (%s)" % self.layerc_version)
        p("machine: %s" % machine())
        p("peers: PyTorch %s (%s), ONNX Runtime %s (%s), oneDNN %s" % (
            self.torch_version or "unavailable", TORCH_PY, self.ort_version or "unavailable", ORT_PY,
            self.dnnl_version or "unavailable"))
        pk = ", ".join("%d thread%s %.1f GFLOP/s (range %.1f-%.1f)" % (t, "s" if t > 1 else "", e["gflops"], e["min"],
                                                                      e["max"])
                       for t, e in sorted(self.peak_info.items()))
        p("FP32 FMA peak test at the start (bench/peak.c, %s%s): %s%s" % (
            self.peak_isa, ", the last of %d tries" % self.peak_tries if self.peak_tries > 1 else "", pk, ", 2/1 ratio %.2fx" % self.peak_ratio if self.peak_ratio else ""))
        for t in sorted({g[0] for g in self.gates}):
            gs = [g for g in self.gates if g[0] == t]
            ok = [g[1] for g in gs if g[2]]
            p("%d-thread peak tests (%s): %d, %d passed%s; %d-thread peak used for %% peak (their median): %s" % (
                t, "at the start" if t < max(THREADS) else
                "at the start, and the gates right before and after every measurement; a measurement runs only "
                "right after one >= %.0f%% of %d x the 1-thread peak" % (50 * GATE_RATIO, t),
                len(gs), len(ok),
                " (median %.1f, range %.1f-%.1f GFLOP/s)" % (statistics.median(ok), min(ok), max(ok)) if ok else "",
                t, "%.1f GFLOP/s" % self.peak_for(t) if self.peak_for(t) else "none (never ~%dx)" % t))
        if self.gate_waited:
            p("waited %.0f s in total for free CPUs (budget GATE_BUDGET=%.0f s)" % (self.gate_waited, GATE_BUDGET))
        p("timing: median of >= %g s and >= 10 runs after a warm-up (big models: >= %g s and >= 5 runs; "
          "layerc bench >= 10 runs)" % (MIN_TIME, BIG_MIN_TIME))
        p("")
        p("Models (MACs per sample from `layerc shapes --format json` totals_before_passes; "
          "no-pad: only the Conv2d taps that do not land on zero padding):")
        p("")
        hdr = ("model", "input", "MACs/sample", "no-pad MACs/sample", "batches", "PyTorch f32 vs f64")
        rows = [(m["model"], "[" + ", ".join(str(x) for x in m["input"]) + "]", fmt_macs(m["macs_per_sample"]),
                 fmt_macs(m["valid_macs_per_sample"]) if m["valid_macs_per_sample"] is not None else "-",
                 " ".join(str(b) for b in m["batches"]),
                 ("%.1e" % m["f32_vs_f64"]) if m["f32_vs_f64"] is not None else "-") for m in self.models]
        out.extend(table(hdr, rows))
        p("")
        p("Per engine (check: max |y - ref| against PyTorch eager's output, pass = within 1e-4 + 1e-4|ref|; "
          "peer/layerc: peer ms / layerc ms, > 1 = layerc faster):")
        p("")
        hdr = ("model", "B", "T", "engine", "check", "median ms", "min-p90 ms", "GFLOP/s", "no-pad GFLOP/s",
               "% peak", "peer/layerc", "note")
        rows = []
        for r in self.rows:
            lay = r["engines"].get("layerc", {}).get("median_ms")
            for name in ENGINES:
                e = r["engines"].get(name)
                if e is None:
                    continue
                rows.append(self.engine_cells(r, name, e, lay))
        out.extend(table(hdr, rows))
        p("")
        p("Summary: layerc median ms, its % of the measured peak (no-pad GFLOP/s), and peer ms / layerc ms "
          "(> 1: layerc faster; - : skipped or not applicable; * : the CPUs were busy at the end of that "
          "measurement, twice: not to be trusted):")
        p("")
        hdr = ("model", "B", "T", "layerc ms", "layerc % peak") + tuple("vs " + SHORT[e] for e in ENGINES[1:])
        rows = []
        for r in self.rows:
            e = r["engines"]
            lay = e.get("layerc", {}).get("median_ms")
            star = lambda v: "*" if "busy" in v.get("note", "") else ""  # noqa: E731
            cells = [r["model"], str(r["batch"]), str(r["threads"]),
                     (fmt_ms(lay) + star(e["layerc"])) if lay else "skipped", self.pct(r, lay) if lay else "-"]
            for name in ENGINES[1:]:
                v = e.get(name, {})
                cells.append("%.2fx%s" % (v["median_ms"] / lay, star(v)) if lay and "median_ms" in v else "-")
            rows.append(cells)
        out.extend(table(hdr, rows))
        skips = list(self.skipped)
        for r in self.rows:
            for name, e in r["engines"].items():
                if "skipped" in e:
                    skips.append(("%s B=%d T=%d %s" % (r["model"], r["batch"], r["threads"], name), e["skipped"]))
        if skips:
            p("")
            p("Skipped:")
            # group identical reasons
            by = {}
            for what, why in skips:
                by.setdefault(why, []).append(what)
            for why, whats in by.items():
                p("  - %s: %s" % ("; ".join(whats) if len(whats) <= 6 else "%s and %d more" % (
                    "; ".join(whats[:6]), len(whats) - 6), why))
        p("")
        p("total time %.0f s" % (time.time() - T_START))
        print("\n".join(out))

    def pct(self, r, ms):
        macs = r["valid_macs"] if r["valid_macs"] is not None else r["macs"]
        peak = self.peak_for(r["threads"])
        if not peak or not ms or not macs:
            return "-"
        return "%.1f%%" % (100 * 2 * macs / (ms * 1e-3) / 1e9 / peak)

    def engine_cells(self, r, name, e, lay):
        c = e.get("check")
        if c is None:
            check = "-"
        elif "max_abs" in c:
            check = ("ok %.0e" if c["ok"] else "FAIL %.1e") % c["max_abs"]
        else:
            check = "FAIL: " + c.get("detail", "?")
        ms = e.get("median_ms")
        if ms is None:
            return [r["model"], str(r["batch"]), str(r["threads"]), name, check, "skipped", "", "", "", "", "",
                    e.get("skipped", "")[:100]]
        gf = 2 * r["macs"] / (ms * 1e-3) / 1e9
        vgf = 2 * r["valid_macs"] / (ms * 1e-3) / 1e9 if r["valid_macs"] is not None else None
        return [r["model"], str(r["batch"]), str(r["threads"]), name, check, fmt_ms(ms),
                "%s-%s" % (fmt_ms(e["min_ms"]), fmt_ms(e["p90_ms"])),
                "%.2f" % gf if r["macs"] else "-",
                ("%.2f" % vgf) if vgf is not None and r["valid_macs"] != r["macs"] else ("=" if r["macs"] else "-"),
                self.pct(r, ms) if r["macs"] else "-",
                "" if name == "layerc" else ("%.2fx" % (ms / lay) if lay else "-"),
                e.get("note", "")]


def declared_batches(nn):
    """The batches a model's file asks for in a comment line `# bench-batches: 1 32`, else None."""
    with open(os.path.join(ROOT, nn)) as f:
        m = BENCH_BATCHES.search(f.read())
    return [int(b) for b in m.group(1).split()] if m else None


def fmt_macs(n):
    if n >= 1e9:
        return "%.3f G" % (n / 1e9)
    if n >= 1e6:
        return "%.3f M" % (n / 1e6)
    if n >= 1e3:
        return "%.3f k" % (n / 1e3)
    return "%d" % n


def fmt_ms(ms):
    if ms >= 100:
        return "%.1f" % ms
    if ms >= 1:
        return "%.2f" % ms
    if ms >= 0.01:
        return "%.4f" % ms
    return "%.5f" % ms


def table(hdr, rows):
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(hdr, *rows)] if rows else [len(h) for h in hdr]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return [line(hdr), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]


def machine():
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        info = ""
    name = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    fam = re.search(r"^cpu family\s*:\s*(\d+)", info, re.M)
    model = re.search(r"^model\s*:\s*(\d+)", info, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    isa = ("AVX2" if "avx2" in flags else "no AVX2") + ("+FMA" if "fma" in flags else "")
    isa += ", AVX-512" if "avx512f" in flags else ", no AVX-512"
    isa += ", under a hypervisor" if "hypervisor" in flags else ""
    return "%d vCPUs, %s%s (%s); %s; load average at the start %s" % (
        os.cpu_count() or 0, name.group(1).strip() if name else "?",
        " family %s model %s" % (fam.group(1), model.group(1)) if fam and model else "", isa,
        platform.platform(), LOAD0)


def main():
    b = Bench()
    try:
        b.setup()
        for what, why in b.skipped:
            log("skipping %s: %s" % (what, why))
        b.measure_peak()
        models = [m for m in (b.prepare_model(nn) for nn in b.model_list()) if m]
        for threads in THREADS:              # all 1-thread rows, then all 2-thread rows
            for m in models:
                for batch in m["batches"]:
                    b.do_row(batch=batch, threads=threads, **m)
        order = {m["stem"]: i for i, m in enumerate(models)}
        b.rows.sort(key=lambda r: (order[r["model"]], r["batch"], r["threads"]))
        b.report()
    finally:
        if os.environ.get("KEEP"):
            log("work directory kept: %s" % b.work)
        else:
            shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
