/*
 * file.c: see file.h.
 */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int file_read_all(const char *path, size_t max_bytes, uint8_t **buf, size_t *n, Err *e) {
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return err_set(e, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        fclose(f);
        return err_set(e, "%s is too large (%lld bytes, at most %zu)", path, (long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *p = malloc(size + 1);
    if (!p) {
        fclose(f);
        return err_set(e, "out of memory reading %s (%zu bytes)", path, size);
    }
    size_t got = fread(p, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(p);
        return err_set(e, "cannot read %s (got %zu of %zu bytes)", path, got, size);
    }
    p[size] = 0;
    *buf = p;
    *n = size;
    return 0;
}

int file_write_all(const char *path, const void *buf, size_t n, Err *e) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp) return err_set(e, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        err_set(e, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        err_set(e, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
