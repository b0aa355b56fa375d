/* report.c - prints the inferred graph as a torchinfo-style table or as JSON.
 * Sizes are for the declared input; a named batch dimension counts as 1. */
#include "report.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "plan_memory.h"

static int64_t dtype_size(DType t) { return t == DT_I64 ? 8 : 4; }

static int64_t tensor_bytes(const Shape *s, DType t)
{
    int64_t numel = shape_numel(s);
    return numel < 0 ? INT64_MAX : numel * dtype_size(t);
}

ReportTotals report_totals(const Graph *g)
{
    ReportTotals t = {0};
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (!n->inferred || n->op == OP_INPUT) continue;
        t.params += n->param_count;
        t.macs += n->macs;
        t.activation_bytes += tensor_bytes(&n->shape, n->dtype);
        for (int p = 0; p < n->nparams; p++) t.param_bytes += tensor_bytes(&n->params[p].shape, n->params[p].dtype);
    }
    t.planned_bytes = plan_memory(g->arena, g)->workspace_bytes;
    return t;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(int64_t v, char *buf, size_t size)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t k = 0;
    if (v < 0 && k + 1 < size) buf[k++] = '-';
    for (int i = 0; i < len && k + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static const char *human_bytes(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", v, units[u]);
    return buf;
}

static void rule_line(FILE *out, char c)
{
    for (int i = 0; i < 106; i++) fputc(c, out);
    fputc('\n', out);
}

/* "  (before passes: 1,234)" when the optimizer changed the number. */
static const char *before_text(Arena *a, int64_t before, int64_t after)
{
    char buf[32];
    return before == after ? "" : arena_printf(a, "  (before passes: %s)", grouped(before, buf, sizeof buf));
}

/* Whether every layer reads only the one before it and the last is the output: a stack, shown without a Reads column. */
static bool graph_is_chain(const Graph *g)
{
    if (g->inputs.len != 1 || g->outputs.len != 1 || g->output != g->nodes.items[g->nodes.len - 1]) return false;
    for (int i = 1; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->ninputs != 1 || n->inputs[0] != g->nodes.items[i - 1]) return false;
    }
    return true;
}

/* "conv1, layer1.0.relu": the names of what n reads. */
static const char *reads_text(Arena *a, const Node *n)
{
    const char *text = "";
    for (int k = 0; k < n->ninputs; k++) text = arena_printf(a, "%s%s%s", text, k ? ", " : "", n->inputs[k]->name);
    return text;
}

static void report_inputs_line(FILE *out, const Graph *g)
{
    char shape[MAX_SHAPE_TEXT];
    fprintf(out, "Model: %s    input%s", g->model_name, g->inputs.len > 1 ? "s" : "");
    for (int i = 0; i < g->inputs.len; i++) {
        const Node *in = g->inputs.items[i];
        fprintf(out, "%s %s: %s%s", i ? "," : "", in->name, in->dtype == DT_I64 ? "i64" : "f32",
                shape_format(&in->shape, g->batch_name, shape, sizeof shape));
    }
    fputc('\n', out);
}

/* The memory plan's in-place writes: "layer1.0.conv2 writes into the buffer of maxpool". */
static void report_in_place(FILE *out, const Graph *g)
{
    const MemoryPlan *p = plan_memory(g->arena, g);
    int shown = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        if (p->in_place[i] < 0) continue;
        const Node *n = g->nodes.items[i];
        fprintf(out, "%s %s", shown++ ? "," : "In place (the input's last use):", n->name);
        fprintf(out, " into %s", n->inputs[p->in_place[i]]->name);
    }
    if (shown) fputc('\n', out);
}

void report_text(FILE *out, const Graph *g, bool explain, const ReportTotals *before)
{
    char shape[MAX_SHAPE_TEXT], a[32], b[32], c[32];
    bool dag = !graph_is_chain(g);
    report_inputs_line(out, g);
    rule_line(out, '=');
    if (dag)
        fprintf(out, "%-30s %-34s %-20s %12s %14s  %s\n", "Layer (name)", "Type", "Output Shape", "Param #", "MACs", "Reads");
    else
        fprintf(out, "%-26s %-30s %-20s %12s %14s\n", "Layer (name)", "Type", "Output Shape", "Param #", "MACs");
    rule_line(out, '=');
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op == OP_INPUT) continue;
        const char *shown = n->inferred ? shape_format(&n->shape, g->batch_name, shape, sizeof shape) : "?";
        if (dag) {
            const char *name = n->absorbed.len ? arena_printf(g->arena, "%s [fused]", n->name) : n->name;
            fprintf(out, "%-30s %-34s %-20s %12s %14s  %s\n", name, node_group_types(g->arena, n), shown,
                    grouped(n->param_count, a, sizeof a), grouped(n->macs, b, sizeof b), reads_text(g->arena, n));
        } else {
            const char *name = n->absorbed.len ? arena_printf(g->arena, "%s [fused]", node_group_name(g->arena, n)) : n->name;
            fprintf(out, "%-26s %-30s %-20s %12s %14s\n", name, node_group_types(g->arena, n), shown,
                    grouped(n->param_count, a, sizeof a), grouped(n->macs, b, sizeof b));
        }
        if (!explain) continue;
        for (int e = 0; e < n->explain.len; e++) fprintf(out, "    %s\n", (const char *)n->explain.items[e]);
        for (int p = 0; p < n->nparams; p++)
            fprintf(out, "    %s%s %s\n", n->params[p].key, n->params[p].is_buffer ? " (buffer)" : "",
                    shape_format(&n->params[p].shape, NULL, shape, sizeof shape));
    }
    rule_line(out, '=');
    if (dag) {
        fprintf(out, "Output%s:", g->outputs.len > 1 ? "s" : "");
        for (int i = 0; i < g->outputs.len; i++) fprintf(out, "%s %s", i ? "," : "", ((const Node *)g->outputs.items[i])->name);
        fputc('\n', out);
        report_in_place(out, g);
    }
    ReportTotals t = report_totals(g);
    fprintf(out, "Total params: %s%s\n", grouped(t.params, a, sizeof a), before_text(g->arena, before->params, t.params));
    fprintf(out, "Param bytes: %s (%s, buffers included)%s\n", grouped(t.param_bytes, b, sizeof b),
            human_bytes(t.param_bytes, c, sizeof c), before_text(g->arena, before->param_bytes, t.param_bytes));
    fprintf(out, "Total MACs: %s%s%s\n", grouped(t.macs, a, sizeof a),
            g->batch_name ? arena_printf(g->arena, " (per sample: %s = 1)", g->batch_name) : "",
            before_text(g->arena, before->macs, t.macs));
    fprintf(out, "Activation bytes: %s (%s, all layer outputs)%s\n", grouped(t.activation_bytes, b, sizeof b),
            human_bytes(t.activation_bytes, c, sizeof c), before_text(g->arena, before->activation_bytes, t.activation_bytes));
    fprintf(out, "Planned activation memory: %s (%s%s, buffers reused by liveness; input and output are the caller's)%s\n",
            grouped(t.planned_bytes, b, sizeof b), human_bytes(t.planned_bytes, c, sizeof c), g->batch_name ? " per sample" : "",
            before_text(g->arena, before->planned_bytes, t.planned_bytes));
    rule_line(out, '=');
}

static cJSON *shape_json(const Shape *s, const char *batch_name)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < s->rank; i++) {
        if (i == 0 && s->dynamic_batch)
            cJSON_AddItemToArray(arr, cJSON_CreateString(batch_name ? batch_name : "N"));
        else
            cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)s->dims[i]));
    }
    return arr;
}

static cJSON *node_json(const Node *n, const Graph *g, bool explain)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "name", n->name);
    cJSON_AddStringToObject(obj, "type", op_name(n->op));
    if (n->absorbed.len) {
        cJSON *fused = cJSON_AddArrayToObject(obj, "fused");
        for (int i = 0; i < n->absorbed.len; i++) {
            const Node *m = n->absorbed.items[i];
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "name", m->name);
            cJSON_AddStringToObject(f, "type", op_name(m->op));
            cJSON_AddItemToArray(fused, f);
        }
    }
    cJSON *reads = cJSON_AddArrayToObject(obj, "inputs");
    for (int k = 0; k < n->ninputs; k++) cJSON_AddItemToArray(reads, cJSON_CreateString(n->inputs[k]->name));
    cJSON_AddItemToObject(obj, "output_shape", n->inferred ? shape_json(&n->shape, g->batch_name) : cJSON_CreateNull());
    cJSON_AddNumberToObject(obj, "params", (double)n->param_count);
    cJSON_AddNumberToObject(obj, "macs", (double)n->macs);
    cJSON *sd = cJSON_AddArrayToObject(obj, "state_dict");
    for (int p = 0; p < n->nparams; p++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "key", n->params[p].key);
        cJSON_AddItemToObject(t, "shape", shape_json(&n->params[p].shape, NULL));
        cJSON_AddBoolToObject(t, "buffer", n->params[p].is_buffer);
        cJSON_AddItemToArray(sd, t);
    }
    if (explain) {
        cJSON *lines = cJSON_AddArrayToObject(obj, "explain");
        for (int e = 0; e < n->explain.len; e++) cJSON_AddItemToArray(lines, cJSON_CreateString(n->explain.items[e]));
    }
    return obj;
}

static cJSON *totals_json(const ReportTotals *t)
{
    cJSON *totals = cJSON_CreateObject();
    cJSON_AddNumberToObject(totals, "params", (double)t->params);
    cJSON_AddNumberToObject(totals, "param_bytes", (double)t->param_bytes);
    cJSON_AddNumberToObject(totals, "macs", (double)t->macs);
    cJSON_AddNumberToObject(totals, "activation_bytes", (double)t->activation_bytes);
    cJSON_AddNumberToObject(totals, "planned_activation_bytes", (double)t->planned_bytes);
    return totals;
}

bool report_json(FILE *out, const Graph *g, bool explain, const ReportTotals *before)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", g->model_name);
    cJSON *input = cJSON_AddObjectToObject(root, "input");
    cJSON_AddStringToObject(input, "name", g->input->name);
    cJSON_AddStringToObject(input, "dtype", g->input->dtype == DT_I64 ? "i64" : "f32");
    cJSON_AddItemToObject(input, "shape", shape_json(&g->input->shape, g->batch_name));
    cJSON *inputs = cJSON_AddArrayToObject(root, "inputs");
    for (int i = 0; i < g->inputs.len; i++) {
        const Node *in = g->inputs.items[i];
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", in->name);
        cJSON_AddStringToObject(item, "dtype", in->dtype == DT_I64 ? "i64" : "f32");
        cJSON_AddItemToObject(item, "shape", shape_json(&in->shape, g->batch_name));
        cJSON_AddItemToArray(inputs, item);
    }
    if (g->batch_name) cJSON_AddStringToObject(root, "batch", g->batch_name);
    else cJSON_AddNullToObject(root, "batch");
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if (n->op != OP_INPUT) cJSON_AddItemToArray(layers, node_json(n, g, explain));
    }
    cJSON *outputs = cJSON_AddArrayToObject(root, "outputs");
    for (int i = 0; i < g->outputs.len; i++) cJSON_AddItemToArray(outputs, cJSON_CreateString(((const Node *)g->outputs.items[i])->name));
    ReportTotals t = report_totals(g);
    cJSON_AddItemToObject(root, "totals", totals_json(&t));
    cJSON_AddItemToObject(root, "totals_before_passes", totals_json(before));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return false;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return true;
}
