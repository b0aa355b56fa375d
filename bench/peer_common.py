"""peer_common.py - what the peers benchmark's scripts share (bench/peers.py, torch_peer.py, ort_peer.py):
the agreement check every engine's output passes before it is timed, the timing loop, the CPU gate, and
the gated measurement of a peer (checked, gated, timed, gated again, measured once more if disturbed).
Imported by interpreters with and without torch: only the standard library and numpy."""
import json
import os
import shlex
import subprocess
import time

import numpy as np

ATOL = RTOL = 1e-4
BUSY = "CPUs busy: the FMA peak test right before did not reach ~T x the 1-thread peak"


def compare(y, ref):
    """numpy allclose at ATOL/RTOL (and finite), with the largest error and the share of the tolerance used."""
    y = np.asarray(y, dtype=np.float32)
    if y.shape != ref.shape:
        return {"ok": False, "detail": "shape %s, expected %s" % (list(y.shape), list(ref.shape))}
    err = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    bound = ATOL + RTOL * np.abs(ref.astype(np.float64))
    return {"ok": bool(np.all(err <= bound)) and bool(np.all(np.isfinite(y))),
            "max_abs": float(err.max()) if err.size else 0.0,
            "tol_used": float((err / bound).max()) if err.size else 0.0}


def gate(var):
    """Run $var (peers.py's peak test: PEAK_GATE before, PEAK_POST after a measurement);
    True when the CPUs are free (T threads give ~T x the 1-thread peak)."""
    cmd = os.environ.get(var)
    if not cmd:
        return True, None
    r = subprocess.run(shlex.split(cmd), capture_output=True, text=True)
    try:
        return r.returncode == 0, json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return r.returncode == 0, None


def timed(fn, min_time, min_runs):
    """A warm-up of a tenth of min_time (at least 2 runs), then fn() until min_time and min_runs are reached:
    median, min and p90 in ms, and the number of runs."""
    start = time.perf_counter()
    warm = 0
    while True:
        fn()
        warm += 1
        if warm >= 2 and time.perf_counter() - start >= min_time / 10:
            break
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return {"median_ms": med, "min_ms": times[0], "p90_ms": times[int(round((n - 1) * 0.9))], "runs": n}


def measure(y, ref, fn, min_time, min_runs):
    """A peer's record: y checked against ref (not timed when it differs); then fn timed between the
    PEAK_GATE and PEAK_POST gates, once more when the CPUs got busy or the runs spread over
    $SPREAD_MAX x the fastest (set by peers.py), with a note when that happens twice."""
    spread_max = float(os.environ.get("SPREAD_MAX", "1e9"))
    rec = {"check": compare(y, ref)}
    if not rec["check"]["ok"]:
        rec["skipped"] = "output differs from the reference"
        return rec
    rec["gates"] = []
    for attempt in (1, 2):
        ok, info = gate("PEAK_GATE")           # the machine free?  (always true without PEAK_GATE)
        rec["gates"].append(info)
        if not ok:
            if attempt == 1:
                rec["skipped"] = BUSY
            else:
                rec["note"] = "CPUs busy at the end of the measurement (and still busy after it)"
            return rec
        rec.update(timed(fn, min_time, min_runs))
        ok, info = gate("PEAK_POST")           # still free at the end?  else measure once more
        rec["gates"].append(info)
        spread = rec["median_ms"] / rec["min_ms"]
        if ok and spread <= spread_max:        # ... and once more when the runs spread
            return rec
    rec["note"] = ("CPUs busy at the end of the measurement, twice" if not ok else
                   "runs spread twice (median %.2fx the fastest)" % spread)
    return rec
