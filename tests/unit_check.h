/* unit_check.h - the check counter the C unit-test programs share: a test
 * directory, and counts of passed and failed checks (a failure printed with
 * its detail; every pass too with VERBOSE set).  Each program ends with
 * "NAME: N passed, M failed", which tests/run.sh adds to its totals. */
#ifndef LAYERC_UNIT_CHECK_H
#define LAYERC_UNIT_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct Ctx {
    char dir[64];
    int passed, failed;
} Ctx;

static inline void check(Ctx *t, bool cond, const char *name, const char *detail)
{
    if (cond) {
        t->passed++;
        if (getenv("VERBOSE")) printf("PASS %s\n", name);
        return;
    }
    t->failed++;
    printf("FAIL %s\n", name);
    if (detail && *detail) printf("    %s\n", detail);
}

#endif
