/*
 * fault.c: see fault.h.
 */
#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fault_point(const char *point) {
    static int init, n_points;
    static struct {
        char name[32];
        long at, seen;
    } points[8];
    if (!init) {
        init = 1;
        const char *env = getenv("BEARD_FAULT");
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", env ? env : "");
        for (char *tok = strtok(buf, ","); tok && n_points < 8; tok = strtok(NULL, ",")) {
            char *c = strchr(tok, ':');
            if (!c) continue;
            *c = 0;
            snprintf(points[n_points].name, sizeof(points[n_points].name), "%s", tok);
            points[n_points].at = atol(c + 1);
            n_points++;
        }
    }
    for (int i = 0; i < n_points; i++)
        if (!strcmp(points[i].name, point) && ++points[i].seen == points[i].at) {
            fprintf(stderr, "beard: BEARD_FAULT: killing myself at %s %ld\n", point, points[i].at);
            fflush(stderr);
            raise(SIGKILL);
        }
}
