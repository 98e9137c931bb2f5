/*
 * store.c: the results store on SQLite; see store.h for what a row holds and why the
 * store survives kill -9.
 *
 * SQLite stores a NaN REAL as NULL; undefined figures are written as NULL and read back
 * as NAN. Schema changes bump STORE_SCHEMA, and an older or newer store is refused with
 * a message rather than read wrongly.
 */
#include "store.h"

#include "../core/fault.h"

#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../io/file.h"

#define STORE_SCHEMA "1"

struct Store {
    sqlite3 *db;
    char path[1024];
};

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cells("
    " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL, config TEXT NOT NULL,"
    " source TEXT NOT NULL, dataset TEXT, method TEXT, ipc TEXT, arch TEXT, train_attack TEXT, run INTEGER,"
    " attack TEXT, attack_name TEXT, targeted INTEGER, semantics TEXT, version TEXT, seed INTEGER,"
    " threads INTEGER, machine TEXT, finished TEXT, wall_seconds REAL, n INTEGER, clean_correct INTEGER,"
    " adv_correct INTEGER, clean_accuracy REAL, accuracy REAL, asr REAL, seconds REAL, passes REAL,"
    " clean_ok BLOB, adv_ok BLOB, model_path TEXT, model_sha256 TEXT, extra TEXT, UNIQUE(key, hash));"
    "CREATE TABLE IF NOT EXISTS published("
    " source TEXT NOT NULL, dataset TEXT NOT NULL, ipc TEXT NOT NULL, method TEXT NOT NULL, arch TEXT NOT NULL,"
    " train_attack TEXT NOT NULL, mode TEXT NOT NULL, semantics TEXT NOT NULL, crei REAL, rrm REAL, aem REAL,"
    " note TEXT, UNIQUE(source, dataset, ipc, method, arch, train_attack, mode, semantics));";

// the columns of `cells` after id, in the order bind_row/read_row use
static const char *cell_cols =
    "kind, key, hash, config, source, dataset, method, ipc, arch, train_attack, run, attack, attack_name,"
    " targeted, semantics, version, seed, threads, machine, finished, wall_seconds, n, clean_correct,"
    " adv_correct, clean_accuracy, accuracy, asr, seconds, passes, clean_ok, adv_ok, model_path,"
    " model_sha256, extra";
#define CELL_NCOLS 34

// ----------------------------------------------------------------------------
// helpers

void store_sha256_hex(const void *buf, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(buf, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

void store_sha256_parts(const void *const *bufs, const size_t *lens, int n, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; i < n; i++)
        if (lens[i]) EVP_DigestUpdate(ctx, bufs[i], lens[i]);
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

int store_sha256_file(const char *path, char out[65], Err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, "cannot open %s", path);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        if (ctx) EVP_MD_CTX_free(ctx);
        fclose(f);
        return err_set(e, "out of memory for a checksum");
    }
    unsigned char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0) EVP_DigestUpdate(ctx, buf, k);
    int bad = ferror(f);
    fclose(f);
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (bad) return err_set(e, "cannot read %s", path);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
    return 0;
}

void store_utc_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void store_machine(char *buf, size_t n) {
    if (gethostname(buf, n) != 0) snprintf(buf, n, "unknown");
    buf[n - 1] = 0;
}

void store_fault(const char *point) { fault_point(point); }

void store_row_init(StoreRow *r) {
    memset(r, 0, sizeof(*r));
    r->run = -1;
    r->targeted = -1;
    r->clean_accuracy = r->accuracy = r->asr = r->seconds = r->passes = r->wall_seconds = NAN;
    snprintf(r->source, sizeof(r->source), "run");
}

void store_row_free(StoreRow *r) {
    free(r->config), free(r->extra), free(r->clean_ok), free(r->adv_ok);
    r->config = r->extra = NULL;
    r->clean_ok = r->adv_ok = NULL;
}

void store_rows_free(StoreRow *rows, int n) {
    for (int i = 0; i < n; i++) store_row_free(&rows[i]);
    free(rows);
}

static int db_err(Store *s, Err *e, const char *what) {
    return err_set(e, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(Store *s, const char *sql, Err *e) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(e, "%s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// open / close

int store_open(Store **out, const char *path, int create, Err *e) {
    *out = NULL;
    if (!create && access(path, F_OK) != 0) return err_set(e, "no store at %s", path);
    // an existing store must be a regular file: SQLite would block on a FIFO
    if (access(path, F_OK) == 0 && file_check_regular(path, e)) return -1;
    Store *s = calloc(1, sizeof(Store));
    if (!s) return err_set(e, "out of memory");
    snprintf(s->path, sizeof(s->path), "%s", path);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        err_set(e, "cannot open the store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 60000);
    // journal_mode=WAL is persistent; synchronous and foreign state are per connection
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", e)) goto fail;
    // is it a beard store? (a file of another kind fails here, not later)
    sqlite3_stmt *st = NULL;
    int has_meta = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'", -1, &st,
                           NULL) != SQLITE_OK) {
        db_err(s, e, "not an SQLite database");
        goto fail;
    }
    if (sqlite3_step(st) == SQLITE_ROW) has_meta = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!has_meta) {
        sqlite3_stmt *q = NULL;
        int n_tables = 0;
        if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            n_tables = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (n_tables) {
            err_set(e, "%s is an SQLite database but not a beard store", path);
            goto fail;
        }
        if (exec(s, "BEGIN IMMEDIATE;", e)) goto fail;
        if (exec(s, schema_sql, e) ||
            exec(s, "INSERT OR IGNORE INTO meta VALUES('schema', '" STORE_SCHEMA "'), ('created_by', 'beard " BEARD_VERSION "');", e) ||
            exec(s, "COMMIT;", e)) {
            sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
            goto fail;
        }
    }
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL) != SQLITE_OK) {
        db_err(s, e, "reading the schema version");
        goto fail;
    }
    // the value may be missing, NULL or not text in a file made elsewhere
    const char *got = sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = got && !strcmp(got, STORE_SCHEMA);
    char ver[32] = "none";
    if (!ok && got) snprintf(ver, sizeof(ver), "%s", got);
    sqlite3_finalize(st);
    if (!ok) {
        err_set(e, "%s has store schema %s; this beard reads schema " STORE_SCHEMA, path, ver);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sqlite3_close(s->db);
    free(s);
    return -1;
}

void store_close(Store *s) {
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

const char *store_path(const Store *s) { return s->path; }

// ----------------------------------------------------------------------------
// rows

static void bind_text(sqlite3_stmt *st, int i, const char *v) { sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT); }
static void bind_real(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v)) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}
static void bind_blob(sqlite3_stmt *st, int i, const unsigned char *b, int n) {
    if (b && n > 0) sqlite3_bind_blob(st, i, b, n, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_row(sqlite3_stmt *st, const StoreRow *r) {
    int i = 1;
    bind_text(st, i++, r->kind);
    bind_text(st, i++, r->key);
    bind_text(st, i++, r->hash);
    bind_text(st, i++, r->config ? r->config : "{}");
    bind_text(st, i++, r->source);
    bind_text(st, i++, r->dataset);
    bind_text(st, i++, r->method);
    bind_text(st, i++, r->ipc);
    bind_text(st, i++, r->arch);
    bind_text(st, i++, r->train_attack);
    sqlite3_bind_int(st, i++, r->run);
    bind_text(st, i++, r->attack);
    bind_text(st, i++, r->attack_name);
    sqlite3_bind_int(st, i++, r->targeted);
    bind_text(st, i++, r->semantics);
    bind_text(st, i++, r->version);
    sqlite3_bind_int64(st, i++, r->seed);
    sqlite3_bind_int(st, i++, r->threads);
    bind_text(st, i++, r->machine);
    bind_text(st, i++, r->finished);
    bind_real(st, i++, r->wall_seconds);
    sqlite3_bind_int(st, i++, r->n);
    sqlite3_bind_int(st, i++, r->clean_correct);
    sqlite3_bind_int(st, i++, r->adv_correct);
    bind_real(st, i++, r->clean_accuracy);
    bind_real(st, i++, r->accuracy);
    bind_real(st, i++, r->asr);
    bind_real(st, i++, r->seconds);
    bind_real(st, i++, r->passes);
    bind_blob(st, i++, r->clean_ok, r->n);
    bind_blob(st, i++, r->adv_ok, r->n);
    bind_text(st, i++, r->model_path);
    bind_text(st, i++, r->model_sha256);
    if (r->extra) bind_text(st, i++, r->extra);
    else sqlite3_bind_null(st, i++);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t n) {
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}
static double col_real(sqlite3_stmt *st, int i) {
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}
static char *col_strdup(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}
static unsigned char *col_blob(sqlite3_stmt *st, int i, int n, int *bad) {
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
    int len = sqlite3_column_bytes(st, i);
    if (len != n) {
        *bad = 1;
        return NULL;
    }
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b) {
        *bad = 1;
        return NULL;
    }
    memcpy(b, sqlite3_column_blob(st, i), n);
    return b;
}

// reads the CELL_NCOLS columns starting at column `c0`
static int read_row(Store *s, sqlite3_stmt *st, int c0, StoreRow *r, Err *e) {
    store_row_init(r);
    int i = c0;
    col_text(st, i++, r->kind, sizeof(r->kind));
    col_text(st, i++, r->key, sizeof(r->key));
    col_text(st, i++, r->hash, sizeof(r->hash));
    r->config = col_strdup(st, i++);
    col_text(st, i++, r->source, sizeof(r->source));
    col_text(st, i++, r->dataset, sizeof(r->dataset));
    col_text(st, i++, r->method, sizeof(r->method));
    col_text(st, i++, r->ipc, sizeof(r->ipc));
    col_text(st, i++, r->arch, sizeof(r->arch));
    col_text(st, i++, r->train_attack, sizeof(r->train_attack));
    r->run = sqlite3_column_int(st, i++);
    col_text(st, i++, r->attack, sizeof(r->attack));
    col_text(st, i++, r->attack_name, sizeof(r->attack_name));
    r->targeted = sqlite3_column_int(st, i++);
    col_text(st, i++, r->semantics, sizeof(r->semantics));
    col_text(st, i++, r->version, sizeof(r->version));
    r->seed = sqlite3_column_int64(st, i++);
    r->threads = sqlite3_column_int(st, i++);
    col_text(st, i++, r->machine, sizeof(r->machine));
    col_text(st, i++, r->finished, sizeof(r->finished));
    r->wall_seconds = col_real(st, i++);
    r->n = sqlite3_column_int(st, i++);
    r->clean_correct = sqlite3_column_int(st, i++);
    r->adv_correct = sqlite3_column_int(st, i++);
    r->clean_accuracy = col_real(st, i++);
    r->accuracy = col_real(st, i++);
    r->asr = col_real(st, i++);
    r->seconds = col_real(st, i++);
    r->passes = col_real(st, i++);
    int bad = r->n < 0;
    if (!bad) r->clean_ok = col_blob(st, i, r->n, &bad);
    i++;
    if (!bad) r->adv_ok = col_blob(st, i, r->n, &bad);
    i++;
    col_text(st, i++, r->model_path, sizeof(r->model_path));
    col_text(st, i++, r->model_sha256, sizeof(r->model_sha256));
    r->extra = col_strdup(st, i++);
    if (bad) {
        store_row_free(r);
        return err_set(e, "%s: row %s has per-sample data of the wrong length", s->path, r->key);
    }
    return 0;
}

// the INSERT of a row, inside a transaction the caller holds
static int put_locked(Store *s, const StoreRow *r, int replace, int *written, Err *e) {
    *written = 0;
    sqlite3_stmt *st = NULL;
    if (!replace) {
        if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM cells WHERE key=?1 AND hash=?2", -1, &st, NULL) != SQLITE_OK)
            return db_err(s, e, "looking up a row");
        bind_text(st, 1, r->key);
        bind_text(st, 2, r->hash);
        int found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (found) return 0;
    } else {
        if (sqlite3_prepare_v2(s->db, "DELETE FROM cells WHERE key=?1 AND hash=?2", -1, &st, NULL) != SQLITE_OK)
            return db_err(s, e, "replacing a row");
        bind_text(st, 1, r->key);
        bind_text(st, 2, r->hash);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return db_err(s, e, "replacing a row");
    }
    char sql[1024];
    snprintf(sql, sizeof(sql), "INSERT INTO cells(%s) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,"
             "?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32,?33,?34)", cell_cols);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return db_err(s, e, "preparing an insert");
    bind_row(st, r);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_err(s, e, "writing a row");
    *written = 1;
    return 0;
}

int store_put(Store *s, const StoreRow *r, int replace, int *written, Err *e) {
    int w = 0;
    if (written) *written = 0;
    if (exec(s, "BEGIN IMMEDIATE;", e)) return -1;
    if (put_locked(s, r, replace, &w, e)) {
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
        return -1;
    }
    store_fault("store-write");
    if (exec(s, "COMMIT;", e)) {
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
        return -1;
    }
    if (written) *written = w;
    return 0;
}

int store_get(Store *s, const char *key, const char *hash, StoreRow *out, Err *e) {
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT %s FROM cells WHERE key=?1 AND hash=?2", cell_cols);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return db_err(s, e, "looking up a row");
    bind_text(st, 1, key);
    bind_text(st, 2, hash);
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_err(s, e, "looking up a row");
    }
    if (found && out && read_row(s, st, 0, out, e)) found = -1;
    sqlite3_finalize(st);
    return found;
}

static int load_where(Store *s, const char *tail, StoreRow **rows, int *n, Err *e) {
    *rows = NULL;
    *n = 0;
    char sql[2048];
    snprintf(sql, sizeof(sql), "SELECT %s FROM cells %s", cell_cols, tail);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return db_err(s, e, "reading rows");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            StoreRow *nr = realloc(*rows, sizeof(StoreRow) * cap);
            if (!nr) {
                sqlite3_finalize(st);
                store_rows_free(*rows, *n);
                *rows = NULL, *n = 0;
                return err_set(e, "out of memory reading %s", s->path);
            }
            *rows = nr;
        }
        if (read_row(s, st, 0, &(*rows)[*n], e)) {
            sqlite3_finalize(st);
            store_rows_free(*rows, *n);
            *rows = NULL, *n = 0;
            return -1;
        }
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_rows_free(*rows, *n);
        *rows = NULL, *n = 0;
        return db_err(s, e, "reading rows");
    }
    return 0;
}

int store_load(Store *s, StoreRow **rows, int *n, Err *e) {
    return load_where(s, "ORDER BY key, finished, id", rows, n, e);
}

int store_load_latest(Store *s, StoreRow **rows, int *n, Err *e) {
    return load_where(s,
                      "WHERE id = (SELECT c2.id FROM cells c2 WHERE c2.key = cells.key ORDER BY c2.finished DESC, c2.id DESC "
                      "LIMIT 1) ORDER BY key",
                      rows, n, e);
}

// the results of two rows agree (provenance such as machine and wall time may differ)
static int same_results(const StoreRow *a, const StoreRow *b) {
    if (strcmp(a->kind, b->kind) || a->n != b->n || a->clean_correct != b->clean_correct ||
        a->adv_correct != b->adv_correct || strcmp(a->model_sha256, b->model_sha256))
        return 0;
    if ((a->adv_ok == NULL) != (b->adv_ok == NULL) || (a->clean_ok == NULL) != (b->clean_ok == NULL)) return 0;
    if (a->adv_ok && memcmp(a->adv_ok, b->adv_ok, a->n)) return 0;
    if (a->clean_ok && memcmp(a->clean_ok, b->clean_ok, a->n)) return 0;
    double x = a->accuracy, y = b->accuracy;
    return (isnan(x) && isnan(y)) || x == y;
}

int store_merge(Store *dst, const char *src_path, int *added, int *same, int *conflicts, Err *e) {
    *added = *same = *conflicts = 0;
    Store *src;
    if (store_open(&src, src_path, 0, e)) return -1;
    StoreRow *rows;
    int n;
    PublishedRow *pub = NULL;
    int n_pub = 0;
    if (store_load(src, &rows, &n, e)) {
        store_close(src);
        return -1;
    }
    if (store_load_published(src, &pub, &n_pub, e)) {
        store_rows_free(rows, n);
        store_close(src);
        return -1;
    }
    store_close(src);
    int rc = -1;
    char first[ERR_MAX] = "";
    if (exec(dst, "BEGIN IMMEDIATE;", e)) goto done;
    for (int i = 0; i < n; i++) {
        StoreRow have;
        int f = store_get(dst, rows[i].key, rows[i].hash, &have, e);
        if (f < 0) goto rollback;
        if (f == 1) {
            if (same_results(&have, &rows[i])) (*same)++;
            else {
                if (!*conflicts)
                    snprintf(first, sizeof(first), "%.120s: %.200s differs from the row in %.120s (kept that one)", src_path,
                             rows[i].key, dst->path);
                (*conflicts)++;
            }
            store_row_free(&have);
            continue;
        }
        int w;
        if (put_locked(dst, &rows[i], 0, &w, e)) goto rollback;
        *added += w;
    }
    for (int i = 0; i < n_pub; i++)
        if (store_put_published(dst, &pub[i], e)) goto rollback;
    if (exec(dst, "COMMIT;", e)) goto rollback;
    if (*conflicts) snprintf(e->msg, sizeof(e->msg), "%s", first);
    rc = 0;
    goto done;
rollback:
    sqlite3_exec(dst->db, "ROLLBACK;", NULL, NULL, NULL);
done:
    store_rows_free(rows, n);
    free(pub);
    return rc;
}

int store_integrity(Store *s, Err *e) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
        return db_err(s, e, "integrity check");
    int ok = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        ok = t && !strcmp((const char *)t, "ok");
        if (!ok) err_set(e, "%s: integrity check: %s", s->path, t ? (const char *)t : "(no answer)");
    } else {
        db_err(s, e, "integrity check");
    }
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

// ----------------------------------------------------------------------------
// published rows

int store_put_published(Store *s, const PublishedRow *p, Err *e) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO published(source, dataset, ipc, method, arch, train_attack, mode,"
                           " semantics, crei, rrm, aem, note) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, e, "writing a published row");
    bind_text(st, 1, p->source);
    bind_text(st, 2, p->dataset);
    bind_text(st, 3, p->ipc);
    bind_text(st, 4, p->method);
    bind_text(st, 5, p->arch);
    bind_text(st, 6, p->train_attack);
    bind_text(st, 7, p->mode);
    bind_text(st, 8, p->semantics);
    bind_real(st, 9, p->crei);
    bind_real(st, 10, p->rrm);
    bind_real(st, 11, p->aem);
    bind_text(st, 12, p->note);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(s, e, "writing a published row");
}

int store_load_published(Store *s, PublishedRow **rows, int *n, Err *e) {
    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT source, dataset, ipc, method, arch, train_attack, mode, semantics, crei, rrm, aem, note"
                           " FROM published ORDER BY source, dataset, ipc, crei DESC",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, e, "reading published rows");
    int cap = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            PublishedRow *nr = realloc(*rows, sizeof(PublishedRow) * cap);
            if (!nr) {
                sqlite3_finalize(st);
                free(*rows);
                *rows = NULL, *n = 0;
                return err_set(e, "out of memory");
            }
            *rows = nr;
        }
        PublishedRow *p = &(*rows)[(*n)++];
        memset(p, 0, sizeof(*p));
        col_text(st, 0, p->source, sizeof(p->source));
        col_text(st, 1, p->dataset, sizeof(p->dataset));
        col_text(st, 2, p->ipc, sizeof(p->ipc));
        col_text(st, 3, p->method, sizeof(p->method));
        col_text(st, 4, p->arch, sizeof(p->arch));
        col_text(st, 5, p->train_attack, sizeof(p->train_attack));
        col_text(st, 6, p->mode, sizeof(p->mode));
        col_text(st, 7, p->semantics, sizeof(p->semantics));
        p->crei = col_real(st, 8);
        p->rrm = col_real(st, 9);
        p->aem = col_real(st, 10);
        col_text(st, 11, p->note, sizeof(p->note));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*rows);
        *rows = NULL, *n = 0;
        return db_err(s, e, "reading published rows");
    }
    return 0;
}

// splits a CSV line in place (no quoting: the published figures need none; a quote is
// refused rather than misread)
static int csv_split(char *line, char **f, int max, int *n) {
    *n = 0;
    for (char *p = line;;) {
        if (*n == max) return -1;
        f[(*n)++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    for (int i = 0; i < *n; i++) {
        if (strchr(f[i], '"')) return -2;
        while (*f[i] == ' ') f[i]++;
        size_t l = strlen(f[i]);
        while (l && (f[i][l - 1] == ' ' || f[i][l - 1] == '\r')) f[i][--l] = 0;
    }
    return 0;
}

static int csv_num(const char *s, double *v) {
    if (!*s) return *v = NAN, 0;
    char *end;
    *v = strtod(s, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

int store_import_published_csv(Store *s, const char *path, int *count, Err *e) {
    *count = 0;
    uint8_t *buf;
    size_t len;
    if (file_read_all(path, 16 << 20, &buf, &len, e)) return -1;
    static const char *const want[] = {"source", "dataset", "ipc", "method", "mode", "semantics", "crei", "rrm", "aem"};
    static const char *const optional[] = {"arch", "train_attack", "note"};
    int col[12], n_cols = 0, header = 0, line_no = 0, rc = -1;
    for (int k = 0; k < 12; k++) col[k] = -1;
    if (exec(s, "BEGIN IMMEDIATE;", e)) {
        free(buf);
        return -1;
    }
    char *save = NULL;
    for (char *line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        while (*line == ' ') line++;
        if (!*line || *line == '#' || *line == '\r') continue;
        char *f[32];
        int nf, sr = csv_split(line, f, 32, &nf);
        if (sr) {
            err_set(e, "%s:%d: %s", path, line_no, sr == -2 ? "quoted fields are not supported" : "too many fields");
            goto fail;
        }
        if (!header) {
            header = 1;
            n_cols = nf;
            for (int k = 0; k < 9; k++)
                for (int i = 0; i < nf; i++)
                    if (!strcasecmp(f[i], want[k])) col[k] = i;
            for (int k = 0; k < 3; k++)
                for (int i = 0; i < nf; i++)
                    if (!strcasecmp(f[i], optional[k])) col[9 + k] = i;
            for (int k = 0; k < 9; k++)
                if (col[k] < 0) {
                    err_set(e, "%s:%d: the header lacks the column \"%s\" (want %s,%s,%s,%s,%s,%s,%s,%s,%s)", path, line_no,
                            want[k], want[0], want[1], want[2], want[3], want[4], want[5], want[6], want[7], want[8]);
                    goto fail;
                }
            continue;
        }
        if (nf != n_cols) {
            err_set(e, "%s:%d: %d fields, the header has %d", path, line_no, nf, n_cols);
            goto fail;
        }
        PublishedRow p;
        memset(&p, 0, sizeof(p));
        snprintf(p.source, sizeof(p.source), "%s", f[col[0]]);
        snprintf(p.dataset, sizeof(p.dataset), "%s", f[col[1]]);
        snprintf(p.ipc, sizeof(p.ipc), "%s", f[col[2]]);
        snprintf(p.method, sizeof(p.method), "%s", f[col[3]]);
        snprintf(p.mode, sizeof(p.mode), "%s", f[col[4]]);
        snprintf(p.semantics, sizeof(p.semantics), "%s", f[col[5]]);
        snprintf(p.arch, sizeof(p.arch), "%s", col[9] >= 0 && *f[col[9]] ? f[col[9]] : "ConvNet");
        snprintf(p.train_attack, sizeof(p.train_attack), "%s", col[10] >= 0 && *f[col[10]] ? f[col[10]] : "None");
        if (col[11] >= 0) snprintf(p.note, sizeof(p.note), "%s", f[col[11]]);
        if (!p.source[0] || !p.dataset[0] || !p.ipc[0] || !p.method[0]) {
            err_set(e, "%s:%d: source, dataset, ipc and method must not be empty", path, line_no);
            goto fail;
        }
        if (strcmp(p.mode, "targeted") && strcmp(p.mode, "untargeted")) {
            err_set(e, "%s:%d: mode must be targeted or untargeted, not '%s'", path, line_no, p.mode);
            goto fail;
        }
        if (strcmp(p.semantics, "beard") && strcmp(p.semantics, "pixel")) {
            err_set(e, "%s:%d: semantics must be beard or pixel, not '%s'", path, line_no, p.semantics);
            goto fail;
        }
        const char *names[3] = {"crei", "rrm", "aem"};
        double *dst[3] = {&p.crei, &p.rrm, &p.aem};
        for (int k = 0; k < 3; k++)
            if (csv_num(f[col[6 + k]], dst[k])) {
                err_set(e, "%s:%d: %s '%s' is not a number", path, line_no, names[k], f[col[6 + k]]);
                goto fail;
            }
        if (store_put_published(s, &p, e)) goto fail;
        (*count)++;
    }
    if (!header) {
        err_set(e, "%s: no header line (source,dataset,ipc,method,mode,semantics,crei,rrm,aem)", path);
        goto fail;
    }
    if (exec(s, "COMMIT;", e)) goto fail;
    rc = 0;
    free(buf);
    return rc;
fail:
    sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
    *count = 0;
    free(buf);
    return rc;
}
