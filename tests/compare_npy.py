#!/usr/bin/env python3
"""compare_npy.py GOT.npy WANT.npy ATOL RTOL - whether two little-endian float32
.npy files (C order) have the same shape and values within numpy's allclose rule
(GOT.bin: raw float32 values, then only their count is checked against the shape)
|got - want| <= atol + rtol * |want|.  The standard library only (no numpy), for
tests/run.sh's cross suite.  Prints a line and exits 0 when they match, 1 when not."""
import array
import ast
import sys


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not an .npy file")
    major = data[6]
    size = int.from_bytes(data[8:10] if major == 1 else data[8:12], "little")
    start = (10 if major == 1 else 12) + size
    header = ast.literal_eval(data[10 if major == 1 else 12:start].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        sys.exit(f"{path}: not little-endian float32 in C order")
    values = array.array("f")
    values.frombytes(data[start:])
    return tuple(header["shape"]), values


def main():
    got_path, want_path, atol, rtol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    want_shape, want = read_npy(want_path)
    if got_path.endswith(".bin"):
        got = array.array("f")
        with open(got_path, "rb") as f:
            got.frombytes(f.read())
        got_shape = want_shape
    else:
        got_shape, got = read_npy(got_path)
    if got_shape != want_shape or len(got) != len(want):
        print(f"shape {got_shape} != {want_shape}")
        return 1
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if not (g == w or abs(g - w) <= atol + rtol * abs(w))]
    worst = max((abs(g - w) for g, w in zip(got, want)), default=0.0)
    print(f"{len(bad)} of {len(got)} elements outside atol {atol} + rtol {rtol}, max abs error {worst:.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
