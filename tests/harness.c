/*
 * harness.c: see harness.h.
 */
#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int g_checks, g_fails;

int check_close_d(const char *what, const double *got, const double *ref, size_t n, double atol, double rtol) {
    size_t worst = 0;
    double worst_excess = -1.0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]), tol = atol + rtol * fabs(ref[i]);
        int ok = d <= tol && !isnan(got[i]) == !isnan(ref[i]);
        if (isnan(got[i]) && isnan(ref[i])) ok = 1;
        if (!ok) {
            bad++;
            if (isnan(d) || d - tol > worst_excess) {
                worst_excess = isnan(d) ? INFINITY : d - tol;
                worst = i;
            }
        }
    }
    CHECK(bad == 0, "%s: %d of %zu values off; worst at %zu: got %.9g, want %.9g (atol %g, rtol %g)", what, bad, n,
          worst, n ? got[worst] : 0.0, n ? ref[worst] : 0.0, atol, rtol);
    return bad == 0 ? 0 : -1;
}

int check_close(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double *g = malloc(sizeof(double) * (n ? n : 1)), *r = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) g[i] = got[i], r[i] = ref[i];
    int rc = check_close_d(what, g, r, n, atol, rtol);
    free(g);
    free(r);
    return rc;
}

const char *shared_path(const char *rel, const char *why) {
    static char buf[8][1024];
    static int slot;
    const char *root = getenv("BEARD_SHARED");
    if (!root) root = "../shared";
    char *p = buf[slot++ % 8];
    snprintf(p, 1024, "%s/%s", root, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        printf("SKIP: %s (no %s; ../shared is not next to this checkout)\n", why, p);
        return NULL;
    }
    return p;
}

void test_skip(const char *why) { printf("SKIP: %s\n", why); }

int test_done(const char *name) {
    if (g_fails)
        printf("%s: %d of %d checks FAILED\n", name, g_fails, g_checks);
    else
        printf("%s: all %d checks passed\n", name, g_checks);
    return g_fails ? 1 : 0;
}

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int fixture_load(const char *path, Fixture *fx) {
    memset(fx, 0, sizeof(*fx));
    FILE *f = fopen(path, "rb");
    char magic[8];
    uint32_t count;
    if (!f || rd(f, magic, 8) || memcmp(magic, "BEARDFIX", 8) || rd(f, &count, 4) || count > 100000) {
        CHECK(0, "cannot read fixture %s (regenerate with tests/scripts)", path);
        if (f) fclose(f);
        return -1;
    }
    fx->t = calloc(count, sizeof(FixTensor));
    fx->n = (int)count;
    for (uint32_t i = 0; i < count; i++) {
        FixTensor *t = &fx->t[i];
        uint16_t len;
        uint8_t nd;
        if (rd(f, &len, 2) || len >= sizeof(t->name) || rd(f, t->name, len) || rd(f, &nd, 1) || nd > 8) goto bad;
        t->name[len] = 0;
        t->ndim = nd;
        t->n = 1;
        for (int d = 0; d < nd; d++) {
            if (rd(f, &t->shape[d], 8) || t->shape[d] < 0) goto bad;
            t->n *= (size_t)t->shape[d];
        }
        t->data = malloc(sizeof(float) * (t->n ? t->n : 1));
        if (rd(f, t->data, sizeof(float) * t->n)) goto bad;
    }
    fclose(f);
    return 0;
bad:
    CHECK(0, "fixture %s is truncated or corrupt", path);
    fclose(f);
    fixture_free(fx);
    return -1;
}

const FixTensor *fixture_get(const Fixture *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    CHECK(0, "fixture has no tensor '%s'", name);
    return NULL;
}

void fixture_free(Fixture *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].data);
    free(f->t);
    memset(f, 0, sizeof(*f));
}

const char *test_tmp(const char *name) {
    static char buf[8][1024];
    static int slot;
    const char *tmp = getenv("TMPDIR");
    if (!tmp) tmp = "/tmp";
    char *p = buf[slot++ % 8];
    snprintf(p, 1024, "%s/beard-test-%d-%s", tmp, (int)getpid(), name);
    return p;
}

const char *beard_bin(void) {
    const char *b = getenv("BEARD");
    if (!b) b = "build/beard";
    return access(b, X_OK) == 0 ? b : NULL;
}

static int run_cmd(char *out, size_t n, const char *redirect, const char *fmt, va_list ap) {
    char args[4096], cmd[4600];
    vsnprintf(args, sizeof(args), fmt, ap);
    snprintf(cmd, sizeof(cmd), "BEARD_NO_PROGRESS=1 %s %s %s", beard_bin(), args, redirect);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    while (fgetc(p) != EOF) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int run_cli(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = run_cmd(out, n, "2>&1", fmt, ap);
    va_end(ap);
    return rc;
}

int run_cli_stderr(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = run_cmd(out, n, "2>&1 1>/dev/null", fmt, ap);
    va_end(ap);
    return rc;
}

int run_sh(char *out, size_t n, const char *dir, const char *fmt, ...) {
    char cmd[8192], full[8800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (snprintf(full, sizeof(full), "cd '%s' && export BEARD_NO_PROGRESS=1 && (%s) 2>&1", dir, cmd) >= (int)sizeof(full))
        return -1000;
    FILE *p = popen(full, "r");
    if (!p) return -1000;
    size_t k = out ? fread(out, 1, n - 1, p) : 0;
    if (out) out[k] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof(sink), p) > 0) {
    }
    int st = pclose(p);
    if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        return code > 128 ? -(code - 128) : code; // the shell reports a killed child as 128 + signal
    }
    return WIFSIGNALED(st) ? -WTERMSIG(st) : -1000;
}

const FixTensor *fixture_getf(const Fixture *f, const char *fmt, ...) {
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    return fixture_get(f, name);
}
