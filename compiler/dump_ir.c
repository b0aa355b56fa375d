/* dump_ir.c - the graph IR as text, for `layerc dump-ir`: one line per node,
 *   %3 = Conv2d(%2) conv1 + bn1 + relu1 {in=3 out=32 k=5x5 s=1x1 p=2,2,2,2 d=1x1 g=1 bias} epilogue=ReLU -> f32[N, 32, 32, 32]
 * followed by its parameter tensors.  Debugging a pass means reading this. */
#include <stdio.h>

#include "conv_plan.h"
#include "passes.h"

static void print_attrs(FILE *out, const Node *n)
{
    const ConvAttrs *c = &n->attr.conv;
    const PoolAttrs *p = &n->attr.pool;
    switch (n->op) {
    case OP_CONV2D:
        fprintf(out, " {in=%lld out=%lld k=%lldx%lld s=%lldx%lld p=%lld,%lld,%lld,%lld d=%lldx%lld g=%lld%s%s%s}",
                (long long)c->in_channels, (long long)c->out_channels, (long long)c->kernel[0], (long long)c->kernel[1],
                (long long)c->stride[0], (long long)c->stride[1], (long long)c->pad_begin[0], (long long)c->pad_end[0],
                (long long)c->pad_begin[1], (long long)c->pad_end[1], (long long)c->dilation[0], (long long)c->dilation[1],
                (long long)c->groups, c->bias ? " bias" : "", c->pad_mode ? " mode=" : "", c->pad_mode ? pad_mode_name(c->pad_mode) : "");
        break;
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
        fprintf(out, " {k=%lldx%lld s=%lldx%lld p=%lld,%lld d=%lldx%lld%s%s}", (long long)p->kernel[0], (long long)p->kernel[1],
                (long long)p->stride[0], (long long)p->stride[1], (long long)p->pad[0], (long long)p->pad[1],
                (long long)p->dilation[0], (long long)p->dilation[1], p->ceil_mode ? " ceil" : "",
                n->op == OP_AVGPOOL2D && !p->count_include_pad ? " exclude_pad" : "");
        break;
    case OP_LINEAR:
    case OP_LAZYLINEAR:
        fprintf(out, " {in=%lld out=%lld%s}", (long long)n->attr.linear.in_features, (long long)n->attr.linear.out_features,
                n->attr.linear.bias ? " bias" : "");
        break;
    case OP_BATCHNORM1D:
    case OP_BATCHNORM2D:
        fprintf(out, " {c=%lld eps=%g%s}", (long long)n->attr.norm.num_features, n->attr.norm.eps,
                n->bn_folded ? " folded=scale,shift" : !n->attr.norm.track_running_stats ? " batch_stats" : "");
        break;
    case OP_SOFTMAX:
    case OP_LOGSOFTMAX: fprintf(out, " {dim=%d}", n->attr.axis.dim); break;
    case OP_FLATTEN: fprintf(out, " {start=%d end=%d view}", n->attr.axis.start, n->attr.axis.end); break;
    case OP_SELECT: fprintf(out, " {dim=%d index=%lld}", n->attr.axis.dim, (long long)n->attr.axis.index); break;
    case OP_MEAN: fprintf(out, " {dim=%d%s}", n->attr.axis.dim, n->attr.axis.keepdim ? " keepdim" : ""); break;
    case OP_LEAKYRELU: fprintf(out, " {slope=%g}", n->attr.act.negative_slope); break;
    default: break;
    }
}

void dump_ir(FILE *out, const Graph *g, const char *title)
{
    char shape[MAX_SHAPE_TEXT];
    fprintf(out, "; %s: model %s, %d nodes\n", title, g->model_name, g->nodes.len);
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        const char *dtype = n->dtype == DT_I64 ? "i64" : "f32";
        shape_format(&n->shape, g->batch_name, shape, sizeof shape);
        if (n->op == OP_INPUT) {
            fprintf(out, "%%%d = input %s -> %s%s\n", i, n->name, dtype, shape);
            continue;
        }
        fprintf(out, "%%%d = %s(", i, op_name(n->op));
        for (int k = 0; k < n->ninputs; k++) fprintf(out, "%s%%%d", k ? ", " : "", n->inputs[k]->id);
        fprintf(out, ") %s", node_group_name(g->arena, n));
        print_attrs(out, n);
        if (n->has_residual) fprintf(out, " residual=%%%d", n->inputs[1]->id);
        if (n->has_epilogue) fprintf(out, " epilogue=%s", op_name(n->epilogue));
        if (n->conv_plan && n->conv_plan->algorithm == CONV_WINOGRAD) {
            const WinogradLayout *l = &n->conv_plan->winograd;
            fprintf(out, " algorithm=winograd F(%dx%d,%dx%d)", l->m, l->m, l->r, l->r);
        }
        fprintf(out, " -> %s%s%s\n", dtype, shape, graph_is_output(g, n) ? " (output)" : "");
        for (int p = 0; p < n->nparams; p++) {
            shape_format(&n->params[p].shape, NULL, shape, sizeof shape);
            fprintf(out, "      %s %s%s\n", n->params[p].key, shape, n->params[p].is_buffer ? " (buffer)" : "");
        }
    }
}
