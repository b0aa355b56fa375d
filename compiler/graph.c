/* graph.c - small rewriting utilities over the graph IR used by the passes. */
#include "graph.h"

#include <string.h>

bool graph_is_output(const Graph *g, const Node *n)
{
    for (int i = 0; i < g->outputs.len; i++)
        if (g->outputs.items[i] == n) return true;
    return false;
}

int graph_count_uses(const Graph *g, const Node *n)
{
    int uses = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *m = g->nodes.items[i];
        for (int k = 0; k < m->ninputs; k++) uses += m->inputs[k] == n;
    }
    for (int i = 0; i < g->outputs.len; i++) uses += g->outputs.items[i] == n;
    return uses;
}

/* Keeps the nodes for which keep[id] is set, in order, and renumbers them. */
static void graph_keep_nodes(Graph *g, const bool *keep)
{
    int k = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *m = g->nodes.items[i];
        if (!keep[m->id]) continue;
        g->nodes.items[k++] = m;
    }
    g->nodes.len = k;
    /* Before the passes (the front end removes dead values), a node computes its own output: source_id is its id. */
    for (int i = 0; i < k; i++) {
        Node *m = g->nodes.items[i];
        if (m->source_id == m->id) m->source_id = i;
        m->id = i;
    }
}

int graph_remove_dead_nodes(Graph *g)
{
    int n = g->nodes.len;
    bool *live = arena_alloc_array(g->arena, (size_t)(n ? n : 1), sizeof *live);
    for (int i = 0; i < g->outputs.len; i++) live[((Node *)g->outputs.items[i])->id] = true;
    for (int i = 0; i < g->inputs.len; i++) live[((Node *)g->inputs.items[i])->id] = true;
    for (int i = n - 1; i >= 0; i--) {
        const Node *m = g->nodes.items[i];
        if (!live[i]) continue;
        for (int k = 0; k < m->ninputs; k++) live[m->inputs[k]->id] = true;
    }
    int removed = 0;
    for (int i = 0; i < n; i++) removed += !live[i];
    if (removed) graph_keep_nodes(g, live);
    return removed;
}

/* Whether n reads `input` itself or through views (Identity, Flatten of it). */
static bool reads_input(const Node *n, const Node *input)
{
    for (const Node *m = n->inputs[0]; m; m = op_is_view(m->op) && m->ninputs ? m->inputs[0] : NULL)
        if (m == input) return true;
    return false;
}

int64_t graph_input_token_limit(const Graph *g, const Node *input)
{
    if (input->dtype != DT_I64) return 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const Node *n = g->nodes.items[i];
        if ((n->op == OP_EMBEDDING || n->op == OP_EMBEDDINGBAG) && reads_input(n, input)) return n->attr.emb.num_embeddings;
    }
    return 0;
}

int64_t graph_token_limit(const Graph *g) { return graph_input_token_limit(g, g->input); }

int graph_layer_count(const Graph *g) { return g->nodes.len - g->inputs.len; }

Node *graph_single_user(const Graph *g, const Node *n)
{
    if (graph_is_output(g, n)) return NULL;
    Node *user = NULL;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *m = g->nodes.items[i];
        for (int k = 0; k < m->ninputs; k++) {
            if (m->inputs[k] != n) continue;
            if (user) return NULL;
            user = m;
        }
    }
    return user;
}

void graph_bypass_node(Graph *g, Node *n) { graph_replace_node(g, n, n->inputs[0]); }

void graph_replace_node(Graph *g, Node *n, Node *replacement)
{
    int k = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *m = g->nodes.items[i];
        if (m == n) continue;
        for (int j = 0; j < m->ninputs; j++)
            if (m->inputs[j] == n) m->inputs[j] = replacement;
        m->id = k;
        g->nodes.items[k++] = m;
    }
    g->nodes.len = k;
    for (int i = 0; i < g->outputs.len; i++)
        if (g->outputs.items[i] == n) g->outputs.items[i] = replacement;
    g->output = g->outputs.items[0];
}

const char *node_group_name(Arena *a, const Node *n)
{
    if (n->absorbed.len == 0) return n->name;
    char *s = arena_strdup(a, n->name);
    for (int i = 0; i < n->absorbed.len; i++) s = arena_printf(a, "%s + %s", s, ((const Node *)n->absorbed.items[i])->name);
    return s;
}

const char *node_group_types(Arena *a, const Node *n)
{
    char *s = arena_strdup(a, op_name(n->op));
    for (int i = 0; i < n->absorbed.len; i++) s = arena_printf(a, "%s + %s", s, op_name(((const Node *)n->absorbed.items[i])->op));
    return s;
}

static const char *const pad_mode_names[] = {
#define PAD_MODE_STRING(E, name) [PAD_##E] = #name,
    PAD_MODES(PAD_MODE_STRING)
#undef PAD_MODE_STRING
};

const char *pad_mode_name(PadMode m) { return pad_mode_names[m]; }

PadMode pad_mode_from_name(const char *name)
{
    for (int m = 0; m < (int)(sizeof pad_mode_names / sizeof *pad_mode_names); m++)
        if (strcmp(pad_mode_names[m], name) == 0) return (PadMode)m;
    LAYERC_UNREACHABLE("a padding_mode the binder did not check");
}
