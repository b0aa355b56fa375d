#!/usr/bin/env python3
"""compare_keys.py TORCHVISION.keys.json LAYERC.json

Compares the state_dict keys that `layerc shapes -O0 --format json` lists for
a model with those of the torchvision model (tests/golden/torchvision/, from
tools/gen_graph_goldens.py): the same set of keys, each with the same shape.
layerc's JSON gives no dtype, so the dtypes are checked by what layerc reads
as integers: every I64 tensor of torchvision must be a buffer of shape []
named *.num_batches_tracked in layerc, and every such buffer I64 in
torchvision.  A key that layerc lists twice (a module called twice) is one
state_dict entry, but must have one shape.  Prints each difference; exit 1 if
any.  Needs only the Python standard library (no torch).
"""
import json
import sys


def main():
    want = json.load(open(sys.argv[1]))["keys"]
    doc = json.load(open(sys.argv[2]))
    errors = []
    got = {}
    for layer in doc["layers"]:
        for t in layer.get("state_dict", []):
            key = t["key"]
            if key in got and got[key]["shape"] != t["shape"]:
                errors.append(f"{key}: layerc lists it with shapes {got[key]['shape']} and {t['shape']}")
            got.setdefault(key, t)
    for key in want:
        if key not in got:
            errors.append(f"{key}: in torchvision ({want[key]['dtype']} {want[key]['shape']}), not in layerc")
    for key in got:
        if key not in want:
            errors.append(f"{key}: in layerc ({got[key]['shape']}), not in torchvision")
    for key in want.keys() & got.keys():
        w, g = want[key], got[key]
        if w["shape"] != g["shape"]:
            errors.append(f"{key}: torchvision shape {w['shape']}, layerc {g['shape']}")
        integer = g["buffer"] and g["shape"] == [] and key.endswith(".num_batches_tracked")
        if (w["dtype"] == "I64") != integer:
            errors.append(f"{key}: torchvision dtype {w['dtype']}, layerc "
                          f"{'an integer buffer' if integer else 'a float tensor'}")
    if not errors:
        print(f"{len(want)} keys match")
    for e in sorted(errors):
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
