/*
 * store.h: the results store of `beard run`, one SQLite database (Debian's libsqlite3).
 *
 * One row per finished cell of a grid (see grid.h): its key (which cell of the benchmark
 * it is: "attack/CIFAR10/BACON/ipc50/ConvNet/None/run0/PGD/targeted/beard"), the SHA-256
 * of its full configuration (the same key under another configuration is another row,
 * never a stale reuse), who computed it (beard's version, seed, threads, machine, wall
 * time) and what came out: accuracy, ASR, passes per sample, the per-sample outcomes as
 * blobs (one byte per test sample, 1 = correctly classified), and for training cells the
 * model written, by path and SHA-256. Rows imported from BEARD's evaluation logs carry
 * source "beard-log"; the published leaderboard's figures live in their own table
 * (store_put_published) and are shown as reference rows, never mixed with measurements.
 *
 * Kill safety. Every row is written in one transaction, the database runs in WAL mode
 * with synchronous=FULL and a busy timeout: a process killed at any moment (kill -9
 * included) leaves every committed row intact and no partial one; SQLite's recovery runs
 * on the next open. Under MPI only rank 0 opens the store.
 *
 * Test hook: BEARD_FAULT=store-write:N (see grid_fault in grid.h) kills the process with
 * SIGKILL inside the Nth row's transaction, after its INSERT and before COMMIT.
 */
#ifndef BEARD_STORE_H
#define BEARD_STORE_H

#include "../core/common.h"

typedef struct Store Store;

#define STORE_KEY_MAX 320

typedef struct {
    char kind[16];        // "train", "clean", "attack" (a BEARD log line: "attack"/"clean" with source "beard-log")
    char key[STORE_KEY_MAX];
    char hash[65];        // SHA-256 of config, hex
    char *config;         // the cell's configuration, canonical JSON (owned)
    char source[16];      // "run" (computed by beard) or "beard-log" (imported)
    // coordinates in the grid ("" / -1 where they do not apply)
    char dataset[32], method[64], ipc[16], arch[32], train_attack[48];
    int run;
    char attack[64];      // the attack's label in the grid ("PGD", "PGD[eps=0.0156863]")
    char attack_name[32]; // the attack's canonical name ("PGD")
    int targeted;         // 1, 0, or -1 (training and clean cells)
    char semantics[8];    // "beard", "pixel", or ""
    // provenance
    char version[16];
    long long seed;
    int threads;
    char machine[128];
    char finished[32];    // UTC, ISO 8601
    double wall_seconds;
    // results
    int n, clean_correct, adv_correct;
    double clean_accuracy, accuracy, asr; // percent; NAN where they do not apply
    double seconds;       // the attack's (or the clean pass's) time, as BEARD times it
    double passes;        // forward + backward passes per sample; NAN when unknown
    unsigned char *clean_ok, *adv_ok; // (n) each, or NULL (owned)
    char model_path[1024], model_sha256[65];
    char *extra;          // JSON object text with anything else (owned), or NULL
} StoreRow;

void store_row_init(StoreRow *r);
void store_row_free(StoreRow *r);

// Opens (create: and creates) the database at path, with WAL, synchronous=FULL and a
// busy timeout, and checks its schema version.
int store_open(Store **s, const char *path, int create, Err *e);
void store_close(Store *s);
const char *store_path(const Store *s);

// Writes a row in one transaction. An existing row with the same key and hash is kept
// (returns 0 and sets *written = 0) unless replace, which overwrites it.
int store_put(Store *s, const StoreRow *r, int replace, int *written, Err *e);
// 1 when a row with this key and hash exists (and fills out when not NULL), 0 when none,
// -1 on error
int store_get(Store *s, const char *key, const char *hash, StoreRow *out, Err *e);

// All rows, ordered by key and then by finish time (the newest last). *rows is an array
// of *n rows; free each with store_row_free and the array with free().
int store_load(Store *s, StoreRow **rows, int *n, Err *e);
// Only the newest row per key (what leaderboards use: a key rerun under a new
// configuration supersedes the old row).
int store_load_latest(Store *s, StoreRow **rows, int *n, Err *e);
void store_rows_free(StoreRow *rows, int n);

// Adds every row and published row of the database at src_path that dst lacks (same key
// and hash). Rows present in both with different results are conflicts: dst keeps its
// own, and the count is returned in *conflicts (first one described in e->msg).
int store_merge(Store *dst, const char *src_path, int *added, int *same, int *conflicts, Err *e);

// PRAGMA integrity_check: 0 when "ok", else -1 with SQLite's first complaint in e
int store_integrity(Store *s, Err *e);

// ----------------------------------------------------------------------------
// published figures (reference rows)

typedef struct {
    char source[64];      // e.g. "beard-leaderboard-2024"
    char dataset[32], ipc[16]; // ipc "all" for a unified (all-IPC) board
    char method[64], arch[32], train_attack[48];
    char mode[16], semantics[8];
    double crei, rrm, aem; // percent; NAN when not published
    char note[256];
} PublishedRow;

int store_put_published(Store *s, const PublishedRow *p, Err *e);
int store_load_published(Store *s, PublishedRow **rows, int *n, Err *e);

// Reads a CSV of published figures with the header
//   source,dataset,ipc,method,mode,semantics,crei,rrm,aem[,arch,train_attack,note]
// (lines starting with '#' are comments) into the store; *count rows were read.
int store_import_published_csv(Store *s, const char *path, int *count, Err *e);

// ----------------------------------------------------------------------------
// helpers shared with the grid

// SHA-256 of a buffer / of several buffers in sequence / of a file, as 64 hex digits
void store_sha256_hex(const void *buf, size_t n, char out[65]);
void store_sha256_parts(const void *const *bufs, const size_t *lens, int n, char out[65]);
int store_sha256_file(const char *path, char out[65], Err *e);
// "2025-07-01T12:50:44Z"
void store_utc_now(char *buf, size_t n);
// the host name (for the machine column)
void store_machine(char *buf, size_t n);

// Fault injection for the kill tests (core/fault.h: BEARD_FAULT="point:N[,point:N...]":
// the Nth time the program passes `point` it kills itself with SIGKILL, what kill -9
// does, at a chosen moment). The store's points: "cell-start" (a cell begins), "cell-mid" (its work is done, nothing
// stored yet), "store-write" (inside the row's transaction), "cell-end" (committed).
// Without BEARD_FAULT this does nothing.
void store_fault(const char *point);

#endif
