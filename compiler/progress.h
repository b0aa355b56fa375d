/* progress.h - a one-line progress display for long work (a big build, the
 * reference interpreter on a large model, a benchmark).  On a terminal it
 * draws "layerc: WHAT: STEP (12.3 s)" on stderr once the work has taken
 * PROGRESS_QUIET_SECONDS (so quick commands never show it): on every new
 * step, and at most ten times a second while a step repeats.  It erases the
 * line when the work ends, and before a diagnostic is printed (diag.c), so
 * the command's own output is unchanged.  When stderr is not a terminal, or
 * LAYERC_PROGRESS=0, it does nothing.  No thread: it draws only when the
 * work calls progress_step. */
#ifndef LAYERC_PROGRESS_H
#define LAYERC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#define PROGRESS_QUIET_SECONDS 0.5

typedef struct Progress {
    FILE *out;           /* NULL: off */
    const char *what;    /* "building vgg16_bn.nn" */
    double start, drawn; /* monotonic seconds: when it began, when it last drew */
    char step[160];      /* the step last drawn */
    bool visible;        /* a line is on the terminal */
} Progress;

/* Starts a display of `what` on out (normally stderr); off unless out is a terminal. */
void progress_begin(Progress *p, FILE *out, const char *what);
/* Shows the current step (printf-style); cheap when nothing is drawn, so it may be called often.  p may be NULL. */
void progress_step(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Erases the line for now (the next step draws it again).  p may be NULL. */
void progress_clear(Progress *p);
/* Erases the line and stops.  p may be NULL. */
void progress_end(Progress *p);

#endif
