/*
 * progress.c: see progress.h.
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

void progress_start(Progress *p, const char *label, double total) {
    memset(p, 0, sizeof(*p));
    snprintf(p->label, sizeof(p->label), "%s", label);
    p->total = total > 0 ? total : 1;
    p->t0 = time_now();
    p->tty = isatty(2);
    const char *q = getenv("BEARD_NO_PROGRESS");
    p->quiet = q && *q && *q != '0';
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "--:--");
    else if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    else snprintf(buf, n, "%02d:%02d", (int)(s / 60), (int)s % 60);
}

void progress_update(Progress *p, double done, const char *extra) {
    p->done = done;
    if (p->quiet) return;
    double now = time_now(), el = now - p->t0;
    if (el < 2.0) return;
    if (p->tty ? now - p->last_print < 0.2 : now - p->last_print < 10.0) return;
    p->last_print = now;
    double frac = done / p->total;
    if (frac > 1) frac = 1;
    double eta = frac > 0 ? el * (1 - frac) / frac : -1;
    char e1[16], e2[16];
    fmt_time(e1, sizeof(e1), el);
    fmt_time(e2, sizeof(e2), eta);
    if (p->tty) {
        char bar[31];
        int w = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < w ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %5.1f%% %s elapsed, ETA %s %s\033[K", p->label, bar, 100 * frac, e1, e2,
                extra ? extra : "");
    } else {
        fprintf(stderr, "%s: %5.1f%% after %s, ETA %s %s\n", p->label, 100 * frac, e1, e2, extra ? extra : "");
    }
    fflush(stderr);
    p->shown = 1;
}

void progress_add(Progress *p, double delta, const char *extra) { progress_update(p, p->done + delta, extra); }

void progress_end(Progress *p) {
    if (p->shown && p->tty && !p->quiet) fprintf(stderr, "\r\033[K");
    p->shown = 0;
}
