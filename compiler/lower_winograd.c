/* lower_winograd.c - Conv2d 3x3 or 5x5, stride 1, as Winograd F(4x4,3x3),
 * F(2x2,3x3), F(4x4,5x5) or F(2x2,5x5): four kernels over the scratch layout
 * of conv_plan.h's WinogradLayout (m x m output tiles; n = m + r - 1 is the
 * side of an input patch: 4, 6 or 8),
 *
 *   pad        input -> P: each plane copied into a zeroed, larger plane
 * then, for each band of tile rows (the same kernels again, the band told by
 * the item numbers):
 *   transform  P -> V[sample][n*n][C][tiles]: V = B^T d B for every n x n
 *              patch d, a vector of tiles along a row at a time (the
 *              patches' columns split out of m plain loads by lane shuffles)
 *   multiply   V -> M[sample][n*n][K][tiles]: for each of the n*n positions,
 *              a GEMM with U = G g G^T (the weights, transformed at compile
 *              time in double), register-tiled as 6 channels x 2 vectors of tiles
 *   output     M -> output: Y = A^T M A per m x m tile, + bias, epilogue,
 *              interleaved back into rows with masked edges
 * These steps split one sample's work between the threads.  A batched input
 * also gets a per-sample kernel (kernel_fuse_per_sample) that runs them all
 * for one sample per work item, so that its V and M stay in cache.
 *
 * Per output tile and channel pair this does n*n multiplies instead of
 * m*m r*r: 36 instead of 144 for F(4x4,3x3), 16 instead of 36 for
 * F(2x2,3x3), 64 instead of 400 for F(4x4,5x5), 36 instead of 100 for
 * F(2x2,5x5).  The matrices come from tools/winograd_matrices.py (Toom-Cook
 * at the points 0, 1, -1 and 2, -2 for F(2x2,5x5), 1/2, -2 for F(4x4,3x3),
 * 2, -2, 1/2, -1/2 for F(4x4,5x5); F(2x2,3x3)'s are Lavin & Gray's, "Fast
 * Algorithms for Convolutional Neural Networks" (2015), up to signs), which
 * checks them exactly in rational arithmetic.  The error they add is
 * measured against PyTorch in docs/benchmarks.md.
 * pass_choose_conv_algorithm.c decides which layers take this path, and the tile.
 */
#include "ir_math.h"
#include "lower.h"
#include "conv_plan.h"
#include "parallel.h"

enum { GEMM_CHANNELS = 6, GEMM_VECTORS = 2, MAX_M = 4, MAX_N = 8 };

/* y = A^T [(G g) * (B^T d)] for m outputs of an r-tap correlation (printed
 * by tools/winograd_matrices.py).  Only B^T and A^T run in the kernels; their
 * entries are small integers. */
typedef struct WinogradMatrices {
    double at[MAX_M][MAX_N], g[MAX_N][5], bt[MAX_N][MAX_N];
} WinogradMatrices;

static const WinogradMatrices F2_3 = {
    .at = {{1, 1, 1, 0}, {0, 1, -1, 1}},
    .g = {{1, 0, 0}, {1.0 / 2, 1.0 / 2, 1.0 / 2}, {1.0 / 2, -1.0 / 2, 1.0 / 2}, {0, 0, 1}},
    .bt = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}},
};

static const WinogradMatrices F2_5 = {
    .at = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}},
    .g = {{1.0 / 4, 0, 0, 0, 0},
          {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6},
          {1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6},
          {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
          {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
          {0, 0, 0, 0, 1}},
    .bt = {{4, 0, -5, 0, 1, 0},
           {0, 4, 4, -1, -1, 0},
           {0, -4, 4, 1, -1, 0},
           {0, -2, -1, 2, 1, 0},
           {0, 2, -1, -2, 1, 0},
           {0, 4, 0, -5, 0, 1}},
};

/* m = 4 outputs of 3 taps, at the points 0, 1, -1, 1/2, -2: half the float
 * error of 0, +-1, +-2 (tools/winograd_matrices.py) for 4 more terms in B^T. */
static const WinogradMatrices F4_3 = {
    .at = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 1.0 / 2, -2, 0}, {0, 1, 1, 1.0 / 4, 4, 0}, {0, 1, -1, 1.0 / 8, -8, 1}},
    .g = {{1.0 / 2, 0, 0},
          {1.0 / 6, 1.0 / 6, 1.0 / 6},
          {1.0 / 6, -1.0 / 6, 1.0 / 6},
          {16.0 / 15, 8.0 / 15, 4.0 / 15},
          {1.0 / 30, -1.0 / 15, 2.0 / 15},
          {0, 0, 1.0 / 2}},
    .bt = {{2, -3, -4, 3, 2, 0},
           {0, -2, 1, 5, 2, 0},
           {0, -2, 5, -1, -2, 0},
           {0, 2, 1, -2, -1, 0},
           {0, 1, -2, -1, 2, 0},
           {0, 2, -3, -4, 3, 2}},
};

/* m = 4 outputs of 5 taps, at the points 0, +-1, +-2, +-1/2: 2.5x the float
 * error of F(2, 5) (tools/winograd_matrices.py) for 64 products per 16
 * outputs instead of 144 per 16. */
static const WinogradMatrices F4_5 = {
    .at = {{1, 1, 1, 1, 1, 1, 1, 0},
           {0, 1, -1, 2, -2, 1.0 / 2, -1.0 / 2, 0},
           {0, 1, 1, 4, 4, 1.0 / 4, 1.0 / 4, 0},
           {0, 1, -1, 8, -8, 1.0 / 8, -1.0 / 8, 1}},
    .g = {{1.0 / 4, 0, 0, 0, 0},
          {1.0 / 18, 1.0 / 18, 1.0 / 18, 1.0 / 18, 1.0 / 18},
          {1.0 / 18, -1.0 / 18, 1.0 / 18, -1.0 / 18, 1.0 / 18},
          {1.0 / 360, 1.0 / 180, 1.0 / 90, 1.0 / 45, 2.0 / 45},
          {1.0 / 360, -1.0 / 180, 1.0 / 90, -1.0 / 45, 2.0 / 45},
          {16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45, 1.0 / 45},
          {16.0 / 45, -8.0 / 45, 4.0 / 45, -2.0 / 45, 1.0 / 45},
          {0, 0, 0, 0, 1.0 / 4}},
    .bt = {{4, 0, -21, 0, 21, 0, -4, 0},
           {0, -4, -4, 17, 17, -4, -4, 0},
           {0, 4, -4, -17, 17, 4, -4, 0},
           {0, 2, 1, -10, -5, 8, 4, 0},
           {0, -2, 1, 10, -5, -8, 4, 0},
           {0, 4, 8, -5, -10, 1, 2, 0},
           {0, -4, 8, 5, -10, -1, 2, 0},
           {0, -4, 0, 21, 0, -21, 0, 4}},
};

/* The V block one multiply item reads stays in L2 while every channel block uses it. */
static const int64_t MULTIPLY_BLOCK_FLOATS = 32 * 1024;

typedef struct Winograd {
    KernelBuilder *kb;
    Ir *ir;
    WinogradLayout l;
    const WinogradMatrices *mx;
    int width;
} Winograd;

/* sum over k < count of coef[k] * x[k], for small integer coefficients:
 * zeros skipped, +-1 as an add or subtract, others as a multiply-add. */
static LLVMValueRef combine(Ir *ir, const double *coef, LLVMValueRef const *x, int count)
{
    LLVMBuilderRef b = ir->b;
    int start = -1; /* start from a +1 term when there is one */
    for (int k = 0; k < count && start < 0; k++)
        if (coef[k] == 1) start = k;
    LLVMValueRef sum = start >= 0 ? x[start] : NULL;
    for (int k = 0; k < count; k++) {
        if (coef[k] == 0 || k == start) continue;
        if (!sum) sum = coef[k] == -1 ? LLVMBuildFNeg(b, x[k], "") : LLVMBuildFMul(b, ir_const_like(ir, x[k], coef[k]), x[k], "");
        else if (coef[k] == 1) sum = LLVMBuildFAdd(b, sum, x[k], "");
        else if (coef[k] == -1) sum = LLVMBuildFSub(b, sum, x[k], "");
        else sum = ir_fma(ir, ir_const_like(ir, x[k], coef[k]), x[k], sum);
    }
    return sum;
}

/* Rows i and j share their work when each column has the same coefficient in
 * both or opposite ones (rows at the points p and -p): with E the sum over the
 * first columns and O over the others, row i is E + O and row j is E - O. */
static bool mirrored_rows(const double *a, const double *b, int n)
{
    bool same = false, opposite = false;
    for (int k = 0; k < n; k++) {
        if (a[k] != b[k] && a[k] != -b[k]) return false;
        same = same || (a[k] != 0 && a[k] == b[k]);
        opposite = opposite || (a[k] != 0 && a[k] == -b[k]);
    }
    return same && opposite;
}

/* Columns a and b share their work when every row has coefficients of the
 * same size in both (columns at the points p and -p): x[a] + x[b] serves the
 * rows where they are equal, x[a] - x[b] those where they are opposite. */
static bool paired_columns(const double (*mat)[MAX_N], int rows, int a, int b)
{
    for (int i = 0; i < rows; i++)
        if (mat[i][a] == 0 || (mat[i][a] != mat[i][b] && mat[i][a] != -mat[i][b])) return false;
    return true;
}

/* y[i] = sum over k < n of mat[i][k] x[k] for i < rows (a product with B^T or
 * A^T), with the sums that pairs of points +-p allow shared between rows, or
 * between columns: F(4x4,5x5)'s transforms take a third fewer operations. */
static void apply_matrix(Ir *ir, const double (*mat)[MAX_N], int rows, int n, LLVMValueRef const *x, LLVMValueRef *y)
{
    double coef[MAX_N][3 * MAX_N] = {{0}};
    LLVMValueRef terms[3 * MAX_N];
    int nterms = n;
    bool paired[MAX_N] = {false};
    for (int k = 0; k < n; k++) terms[k] = x[k];
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < n; k++) coef[i][k] = mat[i][k];
    /* Paired columns: their sum and difference as two more terms (with two
     * rows or fewer, making them costs what it saves). */
    for (int a = 0; a < n && rows > 2; a++)
        for (int b = a + 1; b < n && !paired[a]; b++) {
            if (paired[b] || !paired_columns(mat, rows, a, b)) continue;
            paired[a] = paired[b] = true;
            terms[nterms] = LLVMBuildFAdd(ir->b, x[a], x[b], "");
            terms[nterms + 1] = LLVMBuildFSub(ir->b, x[a], x[b], "");
            for (int i = 0; i < rows; i++) {
                coef[i][nterms + (mat[i][a] == mat[i][b] ? 0 : 1)] = mat[i][a];
                coef[i][a] = coef[i][b] = 0;
            }
            nterms += 2;
        }
    bool done[MAX_N] = {false};
    for (int i = 0; i < rows; i++) {
        for (int j = i + 1; j < rows && !done[i]; j++) {
            if (done[j] || !mirrored_rows(coef[i], coef[j], nterms)) continue;
            double even[3 * MAX_N], odd[3 * MAX_N];
            for (int k = 0; k < nterms; k++) {
                even[k] = coef[i][k] == coef[j][k] ? coef[i][k] : 0;
                odd[k] = coef[i][k] == coef[j][k] ? 0 : coef[i][k];
            }
            LLVMValueRef e = combine(ir, even, terms, nterms), o = combine(ir, odd, terms, nterms);
            y[i] = LLVMBuildFAdd(ir->b, e, o, "");
            y[j] = LLVMBuildFSub(ir->b, e, o, "");
            done[i] = done[j] = true;
        }
        if (!done[i]) y[i] = combine(ir, coef[i], terms, nterms);
    }
}

/* ---- pad: P[plane] = the input plane at (pad_top, pad_left), zeros around ---- */

static void lower_pad(Winograd *wg)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    const ConvAttrs *cv = &wg->kb->node->attr.conv;
    KernelArgs a = kernel_begin(wg->kb, ".winograd_pad");
    IrLoop plane = ir_loop_begin(ir, a.begin, a.end, "plane");
    LLVMValueRef in_plane = ir_mul(ir, plane.index, ir_i64(ir, l->h * l->w));
    LLVMValueRef out_plane = ir_mul(ir, plane.index, ir_i64(ir, l->ph * l->pw));
    IrLoop y = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, l->ph), "y");
    LLVMValueRef row = ir_f32_ptr(ir, a.dst, ir_mad(ir, y.index, l->pw, out_plane));
    LLVMBuildMemSet(ir->b, row, LLVMConstInt(LLVMInt8TypeInContext(ir->ctx), 0, 0), ir_i64(ir, l->pw * 4), 4);
    LLVMValueRef iy = ir_sub(ir, y.index, ir_i64(ir, cv->pad_begin[0]));
    LLVMValueRef inside = LLVMBuildAnd(ir->b, LLVMBuildICmp(ir->b, LLVMIntSGE, iy, ir_i64(ir, 0), ""),
                                       LLVMBuildICmp(ir->b, LLVMIntSLT, iy, ir_i64(ir, l->h), ""), "");
    LLVMBasicBlockRef merge = ir_if_begin(ir, inside);
    LLVMValueRef from = ir_f32_ptr(ir, a.src, ir_mad(ir, iy, l->w, in_plane));
    LLVMBuildMemCpy(ir->b, ir_f32_ptr(ir, row, ir_i64(ir, cv->pad_begin[1])), 4, from, 4, ir_i64(ir, l->w * 4));
    ir_if_end(ir, merge);
    ir_loop_end(ir, &y);
    ir_loop_end(ir, &plane);
    /* A copy, bound by memory: the padded plane's floats. */
    kernel_end_in_scratch(wg->kb, -1, l->padded_at, l->in_c, true, MEMORY_COST_PER_FLOAT * l->ph * l->pw);
}

/* ---- transform: V = B^T d B ---- */

/* Columns group .. group + m - 1 of the patches of `width` neighbouring tiles
 * in the P row from `row` (patches start m columns apart): m plain loads,
 * split by lane into m strided vectors (even and odd lanes, twice for m = 4). */
static void load_patch_columns(Winograd *wg, LLVMValueRef src, LLVMValueRef row, int group, LLVMValueRef *d)
{
    Ir *ir = wg->ir;
    int w = wg->width, m = wg->l.m, n = wg->l.n;
    LLVMValueRef v[MAX_M], phase[MAX_M];
    LLVMValueRef first = ir_add(ir, row, ir_i64(ir, group));
    for (int k = 0; k < m; k++) v[k] = ir_load_vec(ir, src, ir_add(ir, first, ir_i64(ir, k * w)), w);
    if (m == 2) {
        phase[0] = ir_even_lanes(ir, v[0], v[1]);
        phase[1] = ir_odd_lanes(ir, v[0], v[1]);
    } else { /* lanes 4l + j: the even lanes' even and odd lanes are j = 0 and 2, the odd lanes' 1 and 3 */
        LLVMValueRef even[2] = {ir_even_lanes(ir, v[0], v[1]), ir_even_lanes(ir, v[2], v[3])};
        LLVMValueRef odd[2] = {ir_odd_lanes(ir, v[0], v[1]), ir_odd_lanes(ir, v[2], v[3])};
        phase[0] = ir_even_lanes(ir, even[0], even[1]);
        phase[1] = ir_even_lanes(ir, odd[0], odd[1]);
        phase[2] = ir_odd_lanes(ir, even[0], even[1]);
        phase[3] = ir_odd_lanes(ir, odd[0], odd[1]);
    }
    for (int j = 0; j < m && group + j < n; j++) d[group + j] = phase[j];
}

/* The n x n patches of `width` neighbouring tiles from P, transformed and
 * stored at tile index `tile` of the n*n planes of V from `v_base`. */
static void transform_vector(Winograd *wg, LLVMValueRef src, LLVMValueRef dst, LLVMValueRef p_row, LLVMValueRef v_base,
                             LLVMValueRef tile)
{
    Ir *ir = wg->ir;
    int n = wg->l.n, w = wg->width;
    LLVMValueRef d[MAX_N][MAX_N], t[MAX_N][MAX_N], column[MAX_N];
    for (int r = 0; r < n; r++)
        for (int group = 0; group < n; group += wg->l.m)
            load_patch_columns(wg, src, ir_add(ir, p_row, ir_i64(ir, r * wg->l.pw)), group, d[r]);
    for (int j = 0; j < n; j++) { /* t = B^T d */
        LLVMValueRef product[MAX_N];
        for (int k = 0; k < n; k++) column[k] = d[k][j];
        apply_matrix(ir, wg->mx->bt, n, n, column, product);
        for (int i = 0; i < n; i++) t[i][j] = product[i];
    }
    for (int i = 0; i < n; i++) { /* V = t B */
        LLVMValueRef v[MAX_N];
        apply_matrix(ir, wg->mx->bt, n, n, t[i], v);
        for (int j = 0; j < n; j++) {
            LLVMValueRef at = ir_add(ir, v_base, ir_add(ir, ir_i64(ir, (i * n + j) * wg->l.v_stride), tile));
            ir_store_vec(ir, dst, at, v[j], w);
        }
    }
}

/* The band of item `index` of a kernel run once per band with items
 * [band * per_band, (band + 1) * per_band) (per_band: per unit of the
 * run-time batch), its item within the band, and the band's tile rows. */
typedef struct BandItem {
    LLVMValueRef local, first_row, rows;
} BandItem;

static BandItem band_item(Winograd *wg, LLVMValueRef index, LLVMValueRef batch, int64_t per_band)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    LLVMValueRef n = ir_mul(ir, ir_i64(ir, per_band), batch);
    LLVMValueRef band = LLVMBuildUDiv(ir->b, index, n, "");
    BandItem bi = {.local = LLVMBuildURem(ir->b, index, n, "")};
    bi.first_row = ir_mul(ir, band, ir_i64(ir, l->band_rows));
    bi.rows = ir_min(ir, ir_i64(ir, l->band_rows), ir_sub(ir, ir_i64(ir, l->ty), bi.first_row));
    return bi;
}

/* Item (band, sample, channel).  Rows run in order, so the lanes a row's last
 * vector writes past its end are rewritten by the next row (or land in the
 * spare tiles past the band's last). */
static void lower_transform(Winograd *wg)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    KernelArgs a = kernel_begin(wg->kb, ".winograd_transform");
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    BandItem bi = band_item(wg, item.index, a.batch, l->in_c);
    LLVMValueRef sample = ir_div_const(ir, bi.local, l->in_c), c = ir_rem_const(ir, bi.local, l->in_c);
    LLVMValueRef p_plane = ir_mul(ir, bi.local, ir_i64(ir, l->ph * l->pw));
    LLVMValueRef v_base = ir_add(ir, ir_mul(ir, sample, ir_i64(ir, l->positions * l->v_stride)), ir_mul(ir, c, ir_i64(ir, l->tiles)));
    IrLoop row = ir_loop_begin(ir, ir_i64(ir, 0), bi.rows, "row");
    IrLoop vec = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, (l->tx + wg->width - 1) / wg->width), "vec");
    LLVMValueRef tx0 = ir_mul(ir, vec.index, ir_i64(ir, wg->width));
    LLVMValueRef ty = ir_add(ir, row.index, bi.first_row);
    LLVMValueRef p_row = ir_add(ir, p_plane, ir_add(ir, ir_mul(ir, ty, ir_i64(ir, l->m * l->pw)), ir_mul(ir, tx0, ir_i64(ir, l->m))));
    transform_vector(wg, a.src, a.dst, p_row, v_base, ir_mad(ir, row.index, l->tx, tx0));
    ir_loop_end(ir, &vec);
    ir_loop_end(ir, &row);
    ir_loop_end(ir, &item);
    /* Bound by memory: n*n floats read and n*n written per tile. */
    kernel_end_in_scratch(wg->kb, l->padded_at, l->transformed_at, l->in_c, true,
                          MEMORY_COST_PER_FLOAT * 2 * l->positions * l->band_rows * l->tx);
}

/* ---- multiply: M[xi][k][t] = sum over c of U[xi][k][c] V[xi][c][t] ---- */

/* Blocks of GEMM_CHANNELS output channels (the last one padded with zeros). */
static int64_t channel_blocks(const WinogradLayout *l) { return (l->out_c + GEMM_CHANNELS - 1) / GEMM_CHANNELS; }

/* U = G g G^T per (k, c), in double, packed as [xi][channel block][c][GEMM_CHANNELS]
 * (zeros past K): the output channels of channel blocks [block_begin, block_end). */
typedef struct WeightTransform {
    const WinogradLayout *l;
    const WinogradMatrices *mx;
    const float *g; /* the weights [K][C][r][r] */
    float *u;
} WeightTransform;

static void transform_blocks(void *ctx, int64_t block_begin, int64_t block_end)
{
    const WeightTransform *wt = ctx;
    const WinogradLayout *l = wt->l;
    const double(*G)[5] = wt->mx->g;
    int n = l->n, r = l->r;
    int64_t blocks = channel_blocks(l);
    int64_t k_end = block_end * GEMM_CHANNELS < l->out_c ? block_end * GEMM_CHANNELS : l->out_c;
    for (int64_t k = block_begin * GEMM_CHANNELS; k < k_end; k++) {
        for (int64_t c = 0; c < l->in_c; c++) {
            const float *f = wt->g + (k * l->in_c + c) * r * r;
            double gg[MAX_N][5]; /* G g */
            for (int i = 0; i < n; i++)
                for (int j = 0; j < r; j++) {
                    gg[i][j] = 0;
                    for (int y = 0; y < r; y++) gg[i][j] += G[i][y] * f[y * r + j];
                }
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double x = 0;
                    for (int y = 0; y < r; y++) x += gg[i][y] * G[j][y];
                    int64_t xi = i * n + j;
                    wt->u[((xi * blocks + k / GEMM_CHANNELS) * l->in_c + c) * GEMM_CHANNELS + k % GEMM_CHANNELS] = (float)x;
                }
        }
    }
}

/* U in the constant pool, transformed on every CPU (VGG16: 1.6 M 3x3 kernels); returns its address. */
static LLVMValueRef transform_weights(const Winograd *wg)
{
    const WinogradLayout *l = &wg->l;
    int64_t blocks = channel_blocks(l);
    LLVMValueRef address;
    WeightTransform wt = {.l = l, .mx = wg->mx, .g = node_param(wg->kb->node, "weight")->data};
    wt.u = lower_constant_space(wg->kb->ir, l->positions * blocks * l->in_c * GEMM_CHANNELS, &address);
    parallel_ranges(blocks, 4, transform_blocks, &wt); /* whole channel blocks: each thread writes runs of U of its own */
    return address;
}

typedef struct MultiplyArgs {
    LLVMValueRef v, m, u;     /* V, M, U base pointers */
    LLVMValueRef v_at, m_at;  /* this (sample, xi)'s plane of V and of M */
    LLVMValueRef u_at;        /* this xi's U */
} MultiplyArgs;

/* `nvec` (<= GEMM_VECTORS) vectors of tiles from `tile` for `ocn` channels from block kblock. */
static void multiply_tile(Winograd *wg, const MultiplyArgs *ma, LLVMValueRef kblock, int ocn, LLVMValueRef tile, int nvec)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    int w = wg->width;
    LLVMValueRef acc[GEMM_CHANNELS][GEMM_VECTORS];
    for (int o = 0; o < ocn; o++)
        for (int v = 0; v < nvec; v++) acc[o][v] = ir_var(ir, ir_vec_type(ir), LLVMConstNull(ir_vec_type(ir)), "acc");
    LLVMValueRef u_block = ir_add(ir, ma->u_at, ir_mul(ir, kblock, ir_i64(ir, l->in_c * GEMM_CHANNELS)));
    IrLoop c = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, l->in_c), "c");
    LLVMValueRef v_row = ir_add(ir, ma->v_at, ir_mad(ir, c.index, l->tiles, tile));
    LLVMValueRef x[GEMM_VECTORS];
    for (int v = 0; v < nvec; v++) x[v] = ir_load_vec(ir, ma->v, ir_add(ir, v_row, ir_i64(ir, v * w)), w);
    LLVMValueRef u_c = ir_mad(ir, c.index, GEMM_CHANNELS, u_block);
    for (int o = 0; o < ocn; o++) {
        LLVMValueRef u = ir_splat(ir, ir_load_f32(ir, ma->u, ir_add(ir, u_c, ir_i64(ir, o))));
        for (int v = 0; v < nvec; v++)
            LLVMBuildStore(ir->b, ir_fma(ir, u, x[v], LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[o][v], "")), acc[o][v]);
    }
    ir_loop_end(ir, &c);
    LLVMValueRef k0 = ir_mul(ir, kblock, ir_i64(ir, GEMM_CHANNELS));
    for (int o = 0; o < ocn; o++) {
        LLVMValueRef m_row = ir_add(ir, ma->m_at, ir_mad(ir, ir_add(ir, k0, ir_i64(ir, o)), l->tiles, tile));
        for (int v = 0; v < nvec; v++)
            ir_store_vec(ir, ma->m, ir_add(ir, m_row, ir_i64(ir, v * w)), LLVMBuildLoad2(ir->b, ir_vec_type(ir), acc[o][v], ""), w);
    }
}

/* Every tile of `vectors` vectors of tiles from `first` for channel block
 * kblock: GEMM_VECTORS at a time, then one more when the count is odd. */
static void multiply_block(Winograd *wg, const MultiplyArgs *ma, LLVMValueRef kblock, int ocn, LLVMValueRef first,
                           LLVMValueRef vectors)
{
    Ir *ir = wg->ir;
    int64_t step = GEMM_VECTORS * wg->width;
    IrLoop mt = ir_loop_begin(ir, ir_i64(ir, 0), ir_div_const(ir, vectors, GEMM_VECTORS), "mt");
    multiply_tile(wg, ma, kblock, ocn, ir_mad(ir, mt.index, step, first), GEMM_VECTORS);
    ir_loop_end(ir, &mt);
    LLVMValueRef odd = LLVMBuildICmp(ir->b, LLVMIntNE, ir_rem_const(ir, vectors, GEMM_VECTORS), ir_i64(ir, 0), "");
    LLVMBasicBlockRef merge = ir_if_begin(ir, odd);
    LLVMValueRef last = ir_mad(ir, ir_div_const(ir, vectors, GEMM_VECTORS), step, first);
    multiply_tile(wg, ma, kblock, ocn, last, 1);
    ir_if_end(ir, merge);
}

/* Item (sample, xi, block of tiles): every channel block over the block's
 * tiles.  Only the vectors that hold a band's tiles are multiplied (the
 * output step reads no others), not all of `tiles`. */
static void lower_multiply(Winograd *wg)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    int64_t step = GEMM_VECTORS * wg->width;
    int64_t used = (l->band_rows * l->tx + wg->width - 1) / wg->width * wg->width;
    int64_t block = MULTIPLY_BLOCK_FLOATS / l->in_c / step * step;
    if (block < step) block = step;
    if (block > used) block = used;
    int64_t nblocks = (used + block - 1) / block;
    int64_t full = l->out_c / GEMM_CHANNELS, rest = l->out_c % GEMM_CHANNELS;
    MultiplyArgs ma = {.u = transform_weights(wg)};

    KernelArgs a = kernel_begin(wg->kb, ".winograd_multiply");
    ma.v = a.src;
    ma.m = a.dst;
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    LLVMValueRef sample_xi = ir_div_const(ir, item.index, nblocks); /* sample * positions + xi */
    LLVMValueRef xi = ir_rem_const(ir, sample_xi, l->positions);
    LLVMValueRef first = ir_mul(ir, ir_rem_const(ir, item.index, nblocks), ir_i64(ir, block));
    LLVMValueRef count_v = ir_div_const(ir, ir_min(ir, ir_i64(ir, block), ir_sub(ir, ir_i64(ir, used), first)), wg->width);
    ma.v_at = ir_mul(ir, sample_xi, ir_i64(ir, l->v_stride));
    ma.m_at = ir_mul(ir, sample_xi, ir_i64(ir, l->m_stride));
    ma.u_at = ir_mul(ir, xi, ir_i64(ir, channel_blocks(l) * l->in_c * GEMM_CHANNELS));
    IrLoop kb = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, full), "kblock");
    multiply_block(wg, &ma, kb.index, GEMM_CHANNELS, first, count_v);
    ir_loop_end(ir, &kb);
    if (rest) multiply_block(wg, &ma, ir_i64(ir, full), (int)rest, first, count_v);
    ir_loop_end(ir, &item);
    kernel_end_in_scratch(wg->kb, l->transformed_at, l->products_at, l->positions * nblocks, true,
                          2 * l->in_c * l->out_c * block);
}

/* ---- output: Y = A^T M A ---- */

typedef struct OutputArgs {
    LLVMValueRef m, out;
    LLVMValueRef m_at;   /* this (sample, k)'s tile 0 at xi = 0 */
    LLVMValueRef out_at; /* this (sample, k)'s output plane */
    LLVMValueRef bias;   /* a splat, or NULL */
} OutputArgs;

/* The m output vectors y[0..m-1] of a vector of tiles as m vectors of
 * neighbouring output columns (y[0][0], y[1][0], ..., y[m-1][0], y[0][1], ...). */
static void interleave_outputs(Ir *ir, int m, LLVMValueRef *y, LLVMValueRef *chunk)
{
    if (m == 2) {
        ir_interleave(ir, y[0], y[1], &chunk[0], &chunk[1]);
        return;
    }
    LLVMValueRef even[2], odd[2]; /* y0 with y2, y1 with y3; then the two merged */
    ir_interleave(ir, y[0], y[2], &even[0], &even[1]);
    ir_interleave(ir, y[1], y[3], &odd[0], &odd[1]);
    ir_interleave(ir, even[0], odd[0], &chunk[0], &chunk[1]);
    ir_interleave(ir, even[1], odd[1], &chunk[2], &chunk[3]);
}

/* One vector of tiles from tx0 in tile row `row` of the band (output tile
 * row ty): output rows m ty .. m ty + rows - 1, lanes[q] output columns in
 * the q-th vector of the m vectors from m tx0. */
static void output_vector(Winograd *wg, const OutputArgs *oa, LLVMValueRef row, LLVMValueRef ty, LLVMValueRef tx0, int rows,
                          const int *lanes)
{
    Ir *ir = wg->ir;
    LLVMBuilderRef b = ir->b;
    const WinogradLayout *l = &wg->l;
    int n = l->n, m = l->m, w = wg->width;
    LLVMValueRef tile = ir_add(ir, oa->m_at, ir_mad(ir, row, l->tx, tx0));
    LLVMValueRef mv[MAX_N][MAX_N], r[MAX_M][MAX_N], column[MAX_N];
    for (int xi = 0; xi < l->positions; xi++)
        mv[xi / n][xi % n] = ir_load_vec(ir, oa->m, ir_add(ir, tile, ir_i64(ir, xi * l->m_stride)), w);
    for (int j = 0; j < n; j++) { /* the rows of A^T M that are stored */
        LLVMValueRef product[MAX_M];
        for (int k = 0; k < n; k++) column[k] = mv[k][j];
        apply_matrix(ir, wg->mx->at, rows, n, column, product);
        for (int i = 0; i < rows; i++) r[i][j] = product[i];
    }
    for (int i = 0; i < rows; i++) {
        LLVMValueRef y[MAX_M], chunk[MAX_M];
        apply_matrix(ir, wg->mx->at, m, n, r[i], y);
        for (int j = 0; j < m; j++)
            if (oa->bias) y[j] = LLVMBuildFAdd(b, y[j], oa->bias, "");
        interleave_outputs(ir, m, y, chunk);
        LLVMValueRef oy = ir_add(ir, ir_mul(ir, ty, ir_i64(ir, m)), ir_i64(ir, i));
        LLVMValueRef first = ir_add(ir, oa->out_at, ir_add(ir, ir_mul(ir, oy, ir_i64(ir, l->ow)), ir_mul(ir, tx0, ir_i64(ir, m))));
        for (int q = 0; q < m; q++) { /* a vector with no lanes stores nothing */
            LLVMValueRef where = ir_add(ir, first, ir_i64(ir, q * w));
            if (wg->kb->node->has_residual && lanes[q] > 0) /* the output holds the skip tensor: add it */
                chunk[q] = LLVMBuildFAdd(b, chunk[q], ir_load_vec(ir, oa->out, where, lanes[q]), "");
            ir_store_vec(ir, oa->out, where, epilogue_vector(ir, wg->kb->node, chunk[q]), lanes[q]);
        }
    }
}

/* A tile row: whole vectors of tiles (m * width output columns each), then the rest. */
static void output_row(Winograd *wg, const OutputArgs *oa, LLVMValueRef row, LLVMValueRef ty, int rows)
{
    Ir *ir = wg->ir;
    int w = wg->width, m = wg->l.m;
    int64_t whole = wg->l.ow / (m * w), rest = wg->l.ow % (m * w);
    int lanes[MAX_M] = {0};
    for (int q = 0; q < m; q++) lanes[q] = w;
    IrLoop vec = ir_loop_begin(ir, ir_i64(ir, 0), ir_i64(ir, whole), "vec");
    output_vector(wg, oa, row, ty, ir_mul(ir, vec.index, ir_i64(ir, w)), rows, lanes);
    ir_loop_end(ir, &vec);
    if (!rest) return;
    for (int q = 0; q < m; q++) lanes[q] = rest <= q * w ? 0 : rest >= (q + 1) * w ? w : (int)(rest - q * w);
    output_vector(wg, oa, row, ty, ir_i64(ir, whole * w), rows, lanes);
}

/* Item (band, sample, k); a last tile row with fewer than m output rows has them alone. */
static void lower_output(Winograd *wg)
{
    Ir *ir = wg->ir;
    const WinogradLayout *l = &wg->l;
    LLVMValueRef bias = constant_param(wg->kb, "bias");
    KernelArgs a = kernel_begin(wg->kb, ".winograd_output");
    OutputArgs oa = {.m = a.src, .out = a.dst};
    IrLoop item = ir_loop_begin(ir, a.begin, a.end, "item");
    BandItem bi = band_item(wg, item.index, a.batch, l->out_c);
    LLVMValueRef sample = ir_div_const(ir, bi.local, l->out_c), k = ir_rem_const(ir, bi.local, l->out_c);
    oa.m_at = ir_add(ir, ir_mul(ir, sample, ir_i64(ir, l->positions * l->m_stride)), ir_mul(ir, k, ir_i64(ir, l->tiles)));
    oa.out_at = ir_mul(ir, bi.local, ir_i64(ir, l->oh * l->ow));
    oa.bias = bias ? ir_splat(ir, ir_load_f32(ir, bias, k)) : NULL;
    /* the band's tile rows with all m output rows */
    LLVMValueRef full = ir_min(ir, bi.rows, ir_sub(ir, ir_i64(ir, l->oh / l->m), bi.first_row));
    IrLoop row = ir_loop_begin(ir, ir_i64(ir, 0), full, "row");
    output_row(wg, &oa, row.index, ir_add(ir, row.index, bi.first_row), l->m);
    ir_loop_end(ir, &row);
    if (l->oh % l->m) {
        LLVMBasicBlockRef merge = ir_if_begin(ir, LLVMBuildICmp(ir->b, LLVMIntSLT, full, bi.rows, ""));
        output_row(wg, &oa, full, ir_add(ir, full, bi.first_row), (int)(l->oh % l->m));
        ir_if_end(ir, merge);
    }
    ir_loop_end(ir, &item);
    /* Bound by memory: n*n floats read and m*m written per tile. */
    kernel_end_in_scratch(wg->kb, l->products_at, -1, l->out_c, true,
                          MEMORY_COST_PER_FLOAT * (l->positions + l->m * l->m) * l->band_rows * l->tx);
}

void lower_conv_winograd(KernelBuilder *kb)
{
    Winograd wg = {.kb = kb, .ir = kb->ir, .l = conv_plan_of(kb->node).winograd, .width = kb->ir->vector_width};
    wg.mx = wg.l.r == 5 ? (wg.l.m == 4 ? &F4_5 : &F2_5) : wg.l.m == 4 ? &F4_3 : &F2_3;
    lower_pad(&wg);
    int transform = kb->nsteps;
    lower_transform(&wg);
    int multiply = kb->nsteps; /* the same GEMMs for every band, on its V and M */
    lower_multiply(&wg);
    int output = kb->nsteps;
    lower_output(&wg);
    for (int64_t band = 1; band < wg.l.bands; band++) {
        kernel_repeat(kb, transform, band * kb->steps[transform].items);
        kernel_repeat(kb, multiply, 0);
        kernel_repeat(kb, output, band * kb->steps[output].items);
    }
    if (kb->node->inputs[0]->shape.rank == 4) kernel_fuse_per_sample(kb, wg.l.scratch_bytes);
    /* Four steps, each reading all of the one before (the transformed tiles of every input channel feed
     * every output channel): CIFAR-10's layers (5 to 13 MFLOP) took 20-45% longer on 2 threads than on 1
     * (Intel Xeon AVX-512, batch 1, 2026-12-03); ResNet-18's (230 MFLOP) gain. */
    const Shape *out = &kb->node->shape;
    kernel_keep_small_layer_on_one_thread(kb, out->rank == 4 ? out->dims[0] : 1);
}
