/* report.h - the shape-inference report of `layerc shapes`: a torchinfo-like
 * table (text) or the same facts as JSON for tools. */
#ifndef LAYERC_REPORT_H
#define LAYERC_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "graph.h"

typedef struct ReportTotals {
    int64_t params;           /* learnable parameters */
    int64_t param_bytes;      /* every state_dict tensor (parameters and buffers) as stored */
    int64_t macs;
    int64_t activation_bytes; /* every layer output, as if none were reused */
    int64_t planned_bytes;    /* the compiled model's workspace: buffers reused by liveness (plan_memory.h) */
} ReportTotals;

ReportTotals report_totals(const Graph *g);
/* `before`: the totals of the graph before the optimizer's passes (shown beside the final ones). */
void report_text(FILE *out, const Graph *g, bool explain, const ReportTotals *before);
/* Returns false only when the JSON could not be built (out of memory). */
bool report_json(FILE *out, const Graph *g, bool explain, const ReportTotals *before);

/* The graph as Graphviz DOT (report_dot.c): a box per layer or fused group, edges for the reads. */
void report_dot(FILE *out, const Graph *g);

#endif
