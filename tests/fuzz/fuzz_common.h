/*
 * fuzz_common.h: what the file-based fuzz targets share: a private scratch folder per
 * process (under $TMPDIR or /tmp) into which an input is written under the name a
 * loader looks for, since beard's dataset and pool loaders read folders, not buffers.
 */
#ifndef BEARD_FUZZ_COMMON_H
#define BEARD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// the scratch folder, made once
static const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof(dir), "%s/beard-fuzz-%d", t ? t : "/tmp", (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

#define FUZZ_MAX_FILES 16
static char fuzz_paths[FUZZ_MAX_FILES][512];
static int fuzz_n_paths;

// dir/rel (folders on the way made), written with n bytes of data; the path stays valid
// until fuzz_clean
static const char *fuzz_put(const char *rel, const void *data, size_t n) {
    if (fuzz_n_paths == FUZZ_MAX_FILES) abort(); // a bug in the target, not in beard
    char *p = fuzz_paths[fuzz_n_paths++];
    snprintf(p, 512, "%s/%s", fuzz_dir(), rel);
    for (char *s = p + strlen(fuzz_dir()) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0700);
            *s = '/';
        }
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
    return p;
}

// removes what fuzz_put wrote (folders stay: the next input reuses them)
static void fuzz_clean(void) {
    for (int i = 0; i < fuzz_n_paths; i++) unlink(fuzz_paths[i]);
    fuzz_n_paths = 0;
}

#endif
