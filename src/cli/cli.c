/*
 * cli.c: option parsing and error reporting shared by the subcommands.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../io/file.h"

const char *cli_opt(int argc, char **argv, int *i, const char *name, int *missing) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != 0) return NULL;
    if (*i + 1 >= argc) {
        if (missing) *missing = 1;
        fprintf(stderr, "beard: option %s needs a value\n", name);
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

int cli_flag(char **argv, int i, const char *name) { return strcmp(argv[i], name) == 0; }

const char *cli_opt_any(int argc, char **argv, int *i, const char *names, int *missing) {
    char one[64];
    for (const char *p = names; *p;) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = 0;
            const char *v = cli_opt(argc, argv, i, one, missing);
            if (v || (missing && *missing)) return v;
        }
        p += n + (p[n] == ',');
    }
    return NULL;
}

static int vreport(const char *cmd, int status, const char *fmt, va_list ap) {
    fprintf(stderr, "beard %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return status;
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(cmd, 1, fmt, ap);
    va_end(ap);
    return r;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vreport(cmd, 2, fmt, ap);
    va_end(ap);
    return r;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    long v;
    if (parse_int(s, &v) || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_num(const char *cmd, const char *opt, const char *s, double *out) {
    if (parse_number(s, out)) {
        cli_usage_error(cmd, "%s expects a number such as 0.03 or 8/255, got '%s'", opt, s);
        return -1;
    }
    return 0;
}

void cli_quiet(void) { setenv("BEARD_NO_PROGRESS", "1", 1); }

int cli_check_output_file(const char *cmd, const char *opt, const char *path) {
    Err e;
    if (!path || file_check_writable(path, 0, &e) == 0) return 0;
    return cli_error(cmd, "%s: %s", opt, e.msg);
}

int cli_check_output_dir(const char *cmd, const char *opt, const char *dir) {
    Err e;
    if (!dir || file_check_dir_writable(dir, 1, &e) == 0) return 0;
    return cli_error(cmd, "%s: %s", opt, e.msg);
}

int cli_write_json(const char *cmd, const char *path, const cJSON *root) {
    char *s = cJSON_Print(root);
    if (!s) return cli_error(cmd, "out of memory writing %s", path);
    size_t n = strlen(s);
    s[n] = '\n'; // cJSON_Print's NUL becomes the final newline: write n + 1 bytes
    Err e;
    int rc = file_write_all(path, s, n + 1, &e);
    free(s);
    return rc ? cli_error(cmd, "%s", e.msg) : 0;
}

// splits a comma-separated list into malloc'd strings; returns the count or -1 beyond max
static int split_list(const char *list, int max, char **out) {
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            if (n == max) {
                cli_free_strings(out, n);
                return -1;
            }
            out[n] = malloc(len + 1);
            memcpy(out[n], p, len);
            out[n][len] = 0;
            n++;
        }
        if (!c) break;
        p = c + 1;
    }
    return n;
}

void cli_free_strings(char **s, int n) {
    for (int i = 0; i < n; i++) free(s[i]);
}

int cli_split_models(const char *cmd, const char *models, const char *archs, const char *opt, const char *arch_opt,
                     int max, char **paths, char **arch_out, int *n) {
    *n = split_list(models, max, paths);
    if (*n <= 0) {
        if (*n == 0) cli_usage_error(cmd, "%s names no checkpoint", opt);
        else cli_usage_error(cmd, "%s lists more than %d checkpoints", opt, max);
        *n = 0;
        return -1;
    }
    char *a[64];
    int na = split_list(archs, 64, a);
    if (na != 1 && na != *n) {
        cli_usage_error(cmd, "%s lists %d architectures for %d checkpoints of %s (give one for all, or one each)",
                        arch_opt, na < 0 ? 0 : na, *n, opt);
        if (na > 0) cli_free_strings(a, na);
        cli_free_strings(paths, *n);
        *n = 0;
        return -1;
    }
    for (int i = 0; i < *n; i++) {
        const char *src = a[na == 1 ? 0 : i];
        arch_out[i] = malloc(strlen(src) + 1);
        strcpy(arch_out[i], src);
    }
    cli_free_strings(a, na);
    return 0;
}
