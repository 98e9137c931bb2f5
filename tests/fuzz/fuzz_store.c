/*
 * fuzz_store.c: libFuzzer target for what `beard store` and `beard leaderboard` read
 * from outside: a results-store database given to merge or open (src/store/store.c
 * decoding rows, blobs and published figures from whatever SQLite file it is handed) and
 * the published-leaderboard CSV import. The first byte picks which; the rest is the file.
 * The destination of a merge or import is an empty store made once and copied in for
 * each input (beard makes it, so it is not what is fuzzed; creating its schema afresh
 * every time was most of the target's time).
 * Seeds: tests/fuzz/corpus_store/ (tests/scripts/gen_fuzz_seeds.py).
 */
#include "../../src/store/store.h"
#include "fuzz_common.h"

static uint8_t *empty_store;
static size_t empty_store_size;

// an empty store's bytes, made once with store_open
static void make_empty_store(void) {
    char path[512];
    snprintf(path, sizeof(path), "%s/empty.db", fuzz_dir());
    Store *s = NULL;
    Err e;
    if (store_open(&s, path, 1, &e)) abort();
    store_close(s);
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    empty_store_size = (size_t)ftell(f);
    rewind(f);
    empty_store = malloc(empty_store_size);
    if (!empty_store || fread(empty_store, 1, empty_store_size, f) != empty_store_size) abort();
    fclose(f);
    unlink(path);
}

// dst as an empty store, from the bytes made once
static void put_empty_store(const char *dst) {
    FILE *f = fopen(dst, "wb");
    if (!f || fwrite(empty_store, 1, empty_store_size, f) != empty_store_size) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!empty_store) make_empty_store();
    Err e;
    char dst[512];
    snprintf(dst, sizeof(dst), "%s/dst.db", fuzz_dir());
    put_empty_store(dst);
    Store *s = NULL;
    if (data[0] & 1) {
        const char *src = fuzz_put("src.db", data + 1, size - 1);
        Store *in = NULL;
        if (store_open(&in, src, 0, &e) == 0) {
            StoreRow *rows = NULL;
            int n = 0;
            if (store_load(in, &rows, &n, &e) == 0) store_rows_free(rows, n);
            if (store_load_latest(in, &rows, &n, &e) == 0) store_rows_free(rows, n);
            PublishedRow *pub = NULL;
            if (store_load_published(in, &pub, &n, &e) == 0) free(pub);
            store_integrity(in, &e);
            store_close(in);
        }
        if (store_open(&s, dst, 0, &e) == 0) {
            int added, same, conflicts;
            store_merge(s, src, &added, &same, &conflicts, &e);
        }
    } else {
        const char *csv = fuzz_put("published.csv", data + 1, size - 1);
        if (store_open(&s, dst, 0, &e) == 0) {
            int count;
            store_import_published_csv(s, csv, &count, &e);
        }
    }
    store_close(s);
    unlink(dst);
    char side[600];
    snprintf(side, sizeof(side), "%s-wal", dst), unlink(side);
    snprintf(side, sizeof(side), "%s-shm", dst), unlink(side);
    fuzz_clean();
    char src_side[600];
    snprintf(src_side, sizeof(src_side), "%s/src.db-wal", fuzz_dir()), unlink(src_side);
    snprintf(src_side, sizeof(src_side), "%s/src.db-shm", fuzz_dir()), unlink(src_side);
    return 0;
}
