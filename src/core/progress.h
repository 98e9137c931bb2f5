/*
 * progress.h: a progress bar with ETA on stderr for long work.
 *
 * Nothing is printed during the first two seconds, so quick runs stay quiet. On a
 * terminal the bar redraws in place; otherwise (logs, CI) a plain line is printed at
 * most every 10 seconds. BEARD_NO_PROGRESS=1 silences it.
 */
#ifndef BEARD_PROGRESS_H
#define BEARD_PROGRESS_H

typedef struct {
    char label[64];
    double total, done;
    double t0, last_print;
    int tty, shown, quiet;
} Progress;

void progress_start(Progress *p, const char *label, double total);
void progress_update(Progress *p, double done, const char *extra);
void progress_add(Progress *p, double delta, const char *extra);
void progress_end(Progress *p);

#endif
