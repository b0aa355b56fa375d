/* report_dot.c - `layerc dot`: the graph after the optimizer's passes as
 * Graphviz DOT.  Each box is a layer or a fused group (its layers' types,
 * output shape, parameters and MACs, and how a convolution is computed);
 * ellipses are the model's inputs and outputs; an edge is a tensor read, a
 * dashed one the skip tensor a convolution adds in its kernel.  Boxes are
 * coloured by the layer's family.  Render with `dot -Tsvg model.dot`. */
#include "report.h"

#include <string.h>

#include "conv_plan.h"
#include "plan_memory.h"

/* Writes s as the inside of a DOT string: quotes and backslashes escaped. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        fputc(*s, out);
    }
}

/* 1234567 -> "1.23 M": a box has room for three digits. */
static const char *short_count(int64_t v, char *buf, size_t size)
{
    static const char *const units[] = {"", " K", " M", " G", " T"};
    double x = (double)v;
    int u = 0;
    while (x >= 1000 && u < 4) {
        x /= 1000;
        u++;
    }
    snprintf(buf, size, u ? "%.3g%s" : "%.0f%s", x, units[u]);
    return buf;
}

/* The fill colour of a box: one per family of layers, light enough to read black text on. */
static const char *family_colour(const Node *n)
{
    if (op_is_activation(n->op)) return "#fde2e2";
    if (op_is_view(n->op)) return "#eeeeee";
    switch (n->op) {
    case OP_CONV2D: return "#d6e4f5";
    case OP_MAXPOOL2D: case OP_AVGPOOL2D: case OP_ADAPTIVEAVGPOOL2D: return "#dcefd9";
    case OP_LINEAR: case OP_LAZYLINEAR: case OP_BILINEAR: case OP_EMBEDDING: case OP_EMBEDDINGBAG: return "#fbe7c6";
    case OP_BATCHNORM1D: case OP_BATCHNORM2D: case OP_LAYERNORM: return "#efe0f5";
    case OP_RNN: case OP_LSTM: case OP_GRU: case OP_TRANSFORMERENCODERLAYER: return "#f7f3c4";
    case OP_ADD: case OP_MUL: case OP_CAT: return "#ffffff";
    default: return "#f4f4f4";
    }
}

/* "winograd F(4x4,3x3)", "direct, register-tiled", ...: how the pass chose to compute a Conv2d, or NULL. */
static const char *conv_algorithm_text(Arena *a, const Node *n)
{
    if (n->op != OP_CONV2D || !n->conv_plan) return NULL;
    const ConvPlan *p = n->conv_plan;
    switch (p->algorithm) {
    case CONV_WINOGRAD: return arena_printf(a, "Winograd F(%dx%d,%dx%d)", p->winograd.m, p->winograd.m, p->winograd.r, p->winograd.r);
    case CONV_DIRECT_TILED: return "direct, register-tiled";
    case CONV_DEPTHWISE: return "depthwise";
    case CONV_DIRECT: return "direct";
    }
    return NULL;
}

static void put_input(FILE *out, const Graph *g, const Node *in)
{
    char shape[MAX_SHAPE_TEXT];
    fprintf(out, "  n%d [shape=ellipse, fillcolor=\"#ffffff\", label=\"", in->id);
    put_escaped(out, in->name);
    fprintf(out, "\\n%s%s\"];\n", in->dtype == DT_I64 ? "i64" : "f32", shape_format(&in->shape, g->batch_name, shape, sizeof shape));
}

static void put_layer(FILE *out, const Graph *g, const Node *n, int in_place_input)
{
    char shape[MAX_SHAPE_TEXT], params[32], macs[32];
    fprintf(out, "  n%d [fillcolor=\"%s\"%s, label=\"", n->id, family_colour(n), n->absorbed.len ? ", penwidth=2" : "");
    put_escaped(out, n->name);
    fputs("\\n", out);
    put_escaped(out, node_group_types(g->arena, n));
    fprintf(out, "\\n%s", n->inferred ? shape_format(&n->shape, g->batch_name, shape, sizeof shape) : "?");
    if (n->param_count || n->macs)
        fprintf(out, "\\n%s params, %s MACs", short_count(n->param_count, params, sizeof params),
                short_count(n->macs, macs, sizeof macs));
    const char *algorithm = conv_algorithm_text(g->arena, n);
    if (algorithm) fprintf(out, "\\n%s", algorithm);
    if (in_place_input >= 0) {
        fputs("\\nwrites into the buffer of ", out);
        put_escaped(out, n->inputs[in_place_input]->name);
    }
    fputs("\"];\n", out);
}

static void put_edges(FILE *out, const Node *n)
{
    for (int k = 0; k < n->ninputs; k++) {
        bool skip = n->has_residual && k == 1;
        fprintf(out, "  n%d -> n%d%s;\n", n->inputs[k]->id, n->id, skip ? " [style=dashed, label=\" + skip\"]" : "");
    }
}

static void put_outputs(FILE *out, const Graph *g)
{
    char shape[MAX_SHAPE_TEXT];
    char index[16] = "";
    for (int i = 0; i < g->outputs.len; i++) {
        const Node *n = g->outputs.items[i];
        if (g->outputs.len > 1) snprintf(index, sizeof index, " %d", i); /* "output 0", "output 1"; one is "output" */
        fprintf(out, "  out%d [shape=ellipse, fillcolor=\"#ffffff\", label=\"output%s\\n%s\"];\n", i, index,
                n->inferred ? shape_format(&n->shape, g->batch_name, shape, sizeof shape) : "?");
        fprintf(out, "  n%d -> out%d;\n", n->id, i);
    }
}

void report_dot(FILE *out, const Graph *g)
{
    ReportTotals t = report_totals(g);
    char params[32], macs[32];
    const MemoryPlan *plan = plan_memory(g->arena, g);
    fputs("digraph \"", out);
    put_escaped(out, g->model_name);
    fputs("\" {\n  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=12, labelloc=t, label=\"", out);
    put_escaped(out, g->model_name);
    fprintf(out, ": %s params, %s MACs%s\"];\n", short_count(t.params, params, sizeof params), short_count(t.macs, macs, sizeof macs),
            g->batch_name ? " per sample" : "");
    fputs("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n", out);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) put_input(out, g, n);
        else put_layer(out, g, n, plan->in_place[i]);
    }
    for (int i = 0; i < g->nodes.len; i++) put_edges(out, g->nodes.items[i]);
    put_outputs(out, g);
    fputs("}\n", out);
}
