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

int cli_check_output_file(const char *cmd, const char *opt, const char *path) {
    Err e;
    if (!path || file_check_writable(path, 1, &e) == 0) return 0;
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
