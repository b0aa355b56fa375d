/* progress.c - the terminal progress line of progress.h. */
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define REDRAW_SECONDS 0.1

static bool wanted(FILE *out)
{
    const char *env = getenv("LAYERC_PROGRESS");
    if (env && strcmp(env, "0") == 0) return false;
    return out && isatty(fileno(out));
}

void progress_begin(Progress *p, FILE *out, const char *what)
{
    *p = (Progress){.out = wanted(out) ? out : NULL, .what = what, .start = monotonic_seconds()};
}

void progress_step(Progress *p, const char *fmt, ...)
{
    if (!p || !p->out) return;
    double now = monotonic_seconds();
    if (now - p->start < PROGRESS_QUIET_SECONDS) return;
    char step[sizeof p->step];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(step, sizeof step, fmt, ap);
    va_end(ap);
    if (strcmp(step, p->step) == 0 && now - p->drawn < REDRAW_SECONDS) return;
    memcpy(p->step, step, sizeof step);
    p->drawn = now;
    /* \r and "erase to the end of the line": the new text replaces the old. */
    fprintf(p->out, "\r\033[Klayerc: %s: %s (%.1f s)", p->what, step, now - p->start);
    fflush(p->out);
    p->visible = true;
}

void progress_clear(Progress *p)
{
    if (!p || !p->visible) return;
    fputs("\r\033[K", p->out);
    fflush(p->out);
    p->visible = false;
    p->step[0] = '\0';
}

void progress_end(Progress *p)
{
    if (!p) return;
    progress_clear(p);
    p->out = NULL;
}
