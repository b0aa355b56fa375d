#!/usr/bin/env python3
"""compare_shapes.py TORCH.json LAYERC.json

Compares `layerc shapes --format json` with the golden that PyTorch itself
produced (tools/gen_shape_goldens.py): per layer the name, type, output
shape, learnable parameter count and every state_dict key with its shape, in
order; and the total parameter count.  Prints each difference; exit 1 if any.
Needs only the Python standard library (no torch).
"""
import json
import sys


def main():
    torch_doc = json.load(open(sys.argv[1]))
    ours = json.load(open(sys.argv[2]))
    errors = []

    def differ(what, want, got):
        if want != got:
            errors.append(f"{what}: torch {want!r}, layerc {got!r}")

    differ("model", torch_doc["model"], ours["model"])
    differ("input shape", torch_doc["input_shape"], ours["input"]["shape"])
    differ("layer count", len(torch_doc["layers"]), len(ours["layers"]))
    for want, got in zip(torch_doc["layers"], ours["layers"]):
        where = f"layer {want['name']}"
        differ(where + " name", want["name"], got["name"])
        differ(where + " type", want["type"], got["type"])
        differ(where + " output_shape", want["output_shape"], got["output_shape"])
        differ(where + " params", want["params"], got["params"])
        differ(where + " state_dict", [[k, s] for k, s in want["state_dict"]],
               [[t["key"], t["shape"]] for t in got["state_dict"]])
    differ("total params", torch_doc["total_params"], ours["totals"]["params"])
    for e in errors:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
