"""peer_common.py - what the peers benchmark's scripts share (bench/peers.py, torch_peer.py, ort_peer.py):
the agreement check every engine's output passes before it is timed, and the CPU gate.
Imported by interpreters with and without torch: only the standard library and numpy."""
import json
import os
import shlex
import subprocess

import numpy as np

ATOL = RTOL = 1e-4


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
