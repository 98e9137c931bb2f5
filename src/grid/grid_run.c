/*
 * grid_run.c: running a planned grid into the store, in one process, under MPI (rank 0
 * schedules and owns the store, the other ranks compute), or as one shard of N.
 *
 * Resuming. A cell whose key and configuration hash are in the store is done and is
 * skipped (--force reruns it). A training cell also needs its checkpoint on disk with the
 * checksum the store recorded, else it is trained again (and the cells evaluating the new
 * model get new hashes, so stale results are never reused); a distill cell likewise needs
 * its distilled set. Every finished cell is committed before the next starts: kill -9
 * loses at most the cells in flight (a distill cell resumes from its last checkpoint).
 *
 * Order. Distill cells first, then training cells, then per model its clean and attack
 * cells, so each process loads a model and a test set once. Under MPI the scheduler gives
 * a worker the next ready cell of the model it evaluated last when there is one. The
 * results do not depend on the order or the process: each cell is a pure function of its
 * configuration (seeded per sample), given the same thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "dist.h"
#include "grid.h"

int grid_cell_shard(const GridPlan *p, int c, int n_shards) {
    if (n_shards <= 1) return 0;
    const GridCell *cell = &p->cells[c];
    if (cell->kind == CELL_DISTILL) return cell->pool % n_shards;
    // a model trained on a grid pool goes with its pool
    int tc = p->models[cell->model].train_cell;
    if (tc >= 0 && p->cells[tc].pool >= 0) return p->cells[tc].pool % n_shards;
    return cell->model % n_shards;
}

static int in_shard(const GridPlan *p, int c, const GridRunOptions *o) {
    return o->n_shards <= 1 || grid_cell_shard(p, c, o->n_shards) == o->shard;
}

// measured passes per sample replace the estimates for attacks the store has seen
static void refine_costs(GridPlan *p, Store *s) {
    StoreRow *rows;
    int n;
    Err e;
    if (store_load_latest(s, &rows, &n, &e)) return;
    for (int c = 0; c < p->n_cells; c++) {
        GridCell *cell = &p->cells[c];
        if (cell->kind != CELL_ATTACK) continue;
        const char *label = p->grid->attacks[cell->attack].label;
        const char *sem = semantics_name((Semantics)cell->sem);
        double sum = 0;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].kind, "attack") && !strcmp(rows[i].attack, label) && !strcmp(rows[i].semantics, sem) &&
                rows[i].targeted == cell->targeted && isfinite(rows[i].passes))
                sum += rows[i].passes, k++;
        if (k) cell->cost = sum / k * p->tests[p->models[cell->model].dataset].n;
    }
    store_rows_free(rows, n);
}

// is the cell already in the store? (training cells: and their checkpoint on disk)
static int check_done(GridPlan *p, Store *s, int c, Err *e) {
    GridCell *cell = &p->cells[c];
    StoreRow r;
    int f = store_get(s, cell->key, cell->hash, &r, e);
    if (f <= 0) return f;
    if (cell->kind == CELL_DISTILL) {
        char sha[65];
        Err e2;
        GridPool *gp = &p->pools[cell->pool];
        double lr = grid_row_learned_lr(&r);
        if (strcmp(r.model_path, cell->out_path) || grid_pool_file_sha(p, cell->pool, cell->out_path, lr, sha, &e2) ||
            strcmp(sha, r.model_sha256))
            f = 0; // the distilled set is gone or was replaced: distil again
        else snprintf(gp->sha256, sizeof(gp->sha256), "%s", r.model_sha256), gp->n = r.n, gp->lr = lr;
    } else if (cell->kind == CELL_TRAIN) {
        char sha[65];
        Err e2;
        if (strcmp(r.model_path, cell->out_path) || grid_model_sha(p, cell->model, sha, &e2) || strcmp(sha, r.model_sha256))
            f = 0; // the checkpoint is gone or was replaced: train again
        else snprintf(p->models[cell->model].sha256, 65, "%s", r.model_sha256);
    }
    store_row_free(&r);
    return f;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, n, "--:--");
    else if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    else snprintf(buf, n, "%02d:%02d", (int)(s / 60), (int)s % 60);
}

typedef struct {
    int total, finished;
    double cost_total, cost_done, t0;
} Tally;

static void report(const GridPlan *p, int c, const StoreRow *r, const char *error, Tally *t, const GridRunOptions *o) {
    t->finished++;
    t->cost_done += p->cells[c].cost;
    if (o->quiet) return;
    double el = time_now() - t->t0, frac = t->cost_total > 0 ? t->cost_done / t->cost_total : 1;
    char eta[16];
    fmt_eta(eta, sizeof(eta), frac > 0 ? el * (1 - frac) / frac : -1);
    const GridCell *cell = &p->cells[c];
    printf("[%*d/%d %3.0f%% ETA %s] %s", t->total >= 100 ? 3 : 2, t->finished, t->total, 100 * frac, eta, cell->key);
    if (error) printf(": FAILED: %s\n", error);
    else if (cell->kind == CELL_DISTILL) printf(": %d images, %.1fs, %s\n", r->n, r->seconds, r->model_path);
    else if (cell->kind == CELL_TRAIN) printf(": test accuracy %.2f%%, %.1fs\n", r->accuracy, r->seconds);
    else if (cell->kind == CELL_CLEAN) printf(": clean accuracy %.2f%%, %.2fs\n", r->accuracy, r->seconds);
    else
        printf(": accuracy %.2f%% (clean %.2f%%), ASR %.2f%%, %.2fs, %.1f passes/sample\n", r->accuracy, r->clean_accuracy,
               r->asr, r->seconds, r->passes);
    fflush(stdout);
}

// fills the rest of a computed row and commits it
static int commit(GridPlan *p, Store *s, int c, StoreRow *row, const GridRunOptions *o, Err *e) {
    GridCell *cell = &p->cells[c];
    grid_cell_row(p, c, row);
    free(row->config);
    row->config = xstrdup(cell->config);
    store_utc_now(row->finished, sizeof(row->finished));
    store_fault("cell-mid");
    int w;
    if (store_put(s, row, o->force, &w, e)) return -1;
    store_fault("cell-end");
    if (cell->kind == CELL_TRAIN) snprintf(p->models[cell->model].sha256, 65, "%s", row->model_sha256);
    if (cell->kind == CELL_DISTILL) {
        GridPool *gp = &p->pools[cell->pool];
        snprintf(gp->sha256, sizeof(gp->sha256), "%s", row->model_sha256);
        gp->n = row->n;
        gp->lr = grid_row_learned_lr(row);
    }
    cell->status = CELL_DONE;
    return 0;
}

static void block_dependents(GridPlan *p, int c, GridRunStats *st) {
    if (p->cells[c].kind == CELL_DISTILL) { // the models trained on its set, and theirs
        for (int k = 0; k < p->n_cells; k++)
            if (p->cells[k].kind == CELL_TRAIN && p->cells[k].pool == p->cells[c].pool && p->cells[k].status == CELL_PENDING) {
                p->cells[k].status = CELL_BLOCKED;
                st->blocked++;
                block_dependents(p, k, st);
            }
        return;
    }
    if (p->cells[c].kind != CELL_TRAIN) return;
    for (int k = 0; k < p->n_cells; k++)
        if (k != c && p->cells[k].model == p->cells[c].model && p->cells[k].status == CELL_PENDING) {
            p->cells[k].status = CELL_BLOCKED;
            st->blocked++;
        }
}

static int import_rows(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Err *e) {
    if (o->n_shards > 1 && o->shard != 0) return 0;
    for (int i = 0; i < p->n_imports; i++) {
        int w;
        if (store_put(s, &p->imports[i], 0, &w, e)) return -1;
        st->imported += w;
    }
    if (p->grid->published[0]) {
        int n;
        if (store_import_published_csv(s, p->grid->published, &n, e)) return -1;
    }
    return 0;
}

// Whether a pending cell can run now: 1 yes, 0 it waits for its model, 2 it turned out to
// be in the store already (its hash became known only now, after its model's training cell
// ran again and gave the same weights), -1 on error.
static int ready(GridPlan *p, Store *s, int c, const GridRunOptions *o, GridRunStats *st, Err *e) {
    GridCell *cell = &p->cells[c];
    int r = grid_cell_prepare(p, c, e);
    if (r) return r < 0 ? -1 : 0;
    if (!cell->looked_up && !o->force) {
        cell->looked_up = 1;
        int f = check_done(p, s, c, e);
        if (f < 0) return -1;
        if (f) {
            cell->status = CELL_DONE;
            st->done_before++;
            return 2;
        }
    }
    return 1;
}

// marks done cells, counts the work left
static int survey(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Tally *t, Err *e) {
    memset(t, 0, sizeof(*t));
    refine_costs(p, s);
    // distill cells first, then training cells: their outputs key the others
    for (int pass = 0; pass < 3; pass++)
        for (int c = 0; c < p->n_cells; c++) {
            GridCell *cell = &p->cells[c];
            int kp = cell->kind == CELL_DISTILL ? 0 : cell->kind == CELL_TRAIN ? 1 : 2;
            if (kp != pass || !in_shard(p, c, o)) continue;
            st->cells++;
            cell->status = CELL_PENDING;
            int r = grid_cell_prepare(p, c, e);
            if (r < 0) return -1;
            if (r == 0 && !o->force) {
                cell->looked_up = 1;
                int f = check_done(p, s, c, e);
                if (f < 0) return -1;
                if (f) {
                    cell->status = CELL_DONE;
                    st->done_before++;
                    continue;
                }
            }
            t->total++;
            t->cost_total += cell->cost;
        }
    t->t0 = time_now();
    return 0;
}

int grid_run_local(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Err *e) {
    memset(st, 0, sizeof(*st));
    double t0 = time_now();
    if (import_rows(p, s, o, st, e)) return -1;
    Tally t;
    if (survey(p, s, o, st, &t, e)) return -1;
    GridWorker *w = grid_worker_new(p);
    if (!w) return err_set(e, "out of memory");
    int rc = 0;
    for (int c = 0; c < p->n_cells; c++) {
        GridCell *cell = &p->cells[c];
        if (!in_shard(p, c, o) || cell->status != CELL_PENDING) continue;
        int r = ready(p, s, c, o, st, e);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 2) {
            t.total--, t.cost_total -= cell->cost;
            continue;
        }
        if (r == 0) { // its model was not trained (or its set not distilled)
            cell->status = CELL_BLOCKED;
            st->blocked++;
            continue;
        }
        store_fault("cell-start");
        StoreRow row;
        store_row_init(&row);
        Err ce;
        if (grid_cell_run(w, p, c, &row, &ce)) {
            cell->status = CELL_FAILED;
            st->failed++;
            report(p, c, &row, ce.msg, &t, o);
            fprintf(stderr, "beard run: %s\n", ce.msg);
            block_dependents(p, c, st);
            store_row_free(&row);
            continue;
        }
        if (commit(p, s, c, &row, o, e)) {
            store_row_free(&row);
            rc = -1;
            break;
        }
        st->ran++;
        report(p, c, &row, NULL, &t, o);
        store_row_free(&row);
    }
    grid_worker_free(w);
    st->seconds = time_now() - t0;
    if (!rc && st->failed) return err_set(e, "%d cell(s) failed (see above); the others are in %s", st->failed, store_path(s));
    return rc;
}

// ----------------------------------------------------------------------------
// MPI: messages

enum { TAG_WORK = 1, TAG_RESULT = 2, TAG_STOP = 3 };

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int bad;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
    if (b->bad) return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 64;
        unsigned char *nb = realloc(b->b, cap);
        if (!nb) {
            b->bad = 1;
            return;
        }
        b->b = nb, b->cap = cap;
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_u32(Buf *b, uint32_t v) { put(b, &v, 4); }

static void json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}
static double get_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static void get_s(const cJSON *o, const char *k, char *dst, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

// a worker's answer: [cell][status][json length][json][n][flags][clean_ok][adv_ok]
static int pack_result(Buf *b, int c, int status, const StoreRow *r, const char *error) {
    cJSON *o = cJSON_CreateObject();
    if (status) cJSON_AddStringToObject(o, "error", error);
    else {
        cJSON_AddNumberToObject(o, "n", r->n);
        cJSON_AddNumberToObject(o, "clean_correct", r->clean_correct);
        cJSON_AddNumberToObject(o, "adv_correct", r->adv_correct);
        json_num(o, "clean_accuracy", r->clean_accuracy);
        json_num(o, "accuracy", r->accuracy);
        json_num(o, "asr", r->asr);
        json_num(o, "seconds", r->seconds);
        json_num(o, "passes", r->passes);
        json_num(o, "wall_seconds", r->wall_seconds);
        cJSON_AddNumberToObject(o, "threads", r->threads);
        cJSON_AddStringToObject(o, "machine", r->machine);
        cJSON_AddStringToObject(o, "model_path", r->model_path);
        cJSON_AddStringToObject(o, "model_sha256", r->model_sha256);
        if (r->extra) cJSON_AddStringToObject(o, "extra", r->extra);
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return -1;
    put_u32(b, (uint32_t)c);
    put_u32(b, (uint32_t)status);
    put_u32(b, (uint32_t)strlen(txt));
    put(b, txt, strlen(txt));
    free(txt);
    uint32_t n = status ? 0 : (uint32_t)r->n;
    put_u32(b, n);
    unsigned char flags = (!status && r->clean_ok ? 1 : 0) | (!status && r->adv_ok ? 2 : 0);
    put(b, &flags, 1);
    if (flags & 1) put(b, r->clean_ok, n);
    if (flags & 2) put(b, r->adv_ok, n);
    return b->bad ? -1 : 0;
}

static int get_u32(const unsigned char *b, size_t n, size_t *off, uint32_t *v) {
    if (*off + 4 > n) return -1;
    memcpy(v, b + *off, 4);
    *off += 4;
    return 0;
}

static int unpack_result(const unsigned char *b, size_t len, int *c, int *status, StoreRow *r, char *error, size_t en) {
    size_t off = 0;
    uint32_t cc, stt, jl, n;
    if (get_u32(b, len, &off, &cc) || get_u32(b, len, &off, &stt) || get_u32(b, len, &off, &jl) || off + jl > len) return -1;
    char *txt = malloc(jl + 1);
    if (!txt) return -1;
    memcpy(txt, b + off, jl);
    txt[jl] = 0;
    off += jl;
    cJSON *o = cJSON_Parse(txt);
    free(txt);
    if (!o) return -1;
    *c = (int)cc, *status = (int)stt;
    if (stt) get_s(o, "error", error, en);
    else {
        r->n = (int)get_num(o, "n");
        r->clean_correct = (int)get_num(o, "clean_correct");
        r->adv_correct = (int)get_num(o, "adv_correct");
        r->clean_accuracy = get_num(o, "clean_accuracy");
        r->accuracy = get_num(o, "accuracy");
        r->asr = get_num(o, "asr");
        r->seconds = get_num(o, "seconds");
        r->passes = get_num(o, "passes");
        r->wall_seconds = get_num(o, "wall_seconds");
        r->threads = (int)get_num(o, "threads");
        get_s(o, "machine", r->machine, sizeof(r->machine));
        get_s(o, "model_path", r->model_path, sizeof(r->model_path));
        get_s(o, "model_sha256", r->model_sha256, sizeof(r->model_sha256));
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "extra");
        if (cJSON_IsString(x)) r->extra = xstrdup(x->valuestring);
    }
    cJSON_Delete(o);
    unsigned char flags;
    if (get_u32(b, len, &off, &n) || off + 1 > len) return -1;
    flags = b[off++];
    if ((flags & 1) && off + n <= len) {
        r->clean_ok = malloc(n ? n : 1);
        if (!r->clean_ok) return -1;
        memcpy(r->clean_ok, b + off, n);
        off += n;
    }
    if ((flags & 2) && off + n <= len) {
        r->adv_ok = malloc(n ? n : 1);
        if (!r->adv_ok) return -1;
        memcpy(r->adv_ok, b + off, n);
        off += n;
    }
    return off == len && (stt || (int)n == r->n) ? 0 : -1;
}

static int worker_loop(GridPlan *p, Err *e) {
    GridWorker *w = grid_worker_new(p);
    if (!w) return err_set(e, "out of memory");
    int rc = 0;
    for (;;) {
        int src, tag;
        void *msg;
        size_t n;
        if (dist_recv(&src, &tag, &msg, &n, -1, e) != 1) {
            rc = -1;
            break;
        }
        if (tag == TAG_STOP) {
            free(msg);
            break;
        }
        int c = -1;
        char sha[65] = "";
        double lr = 0;
        if (n >= 4 + 64 + 8) {
            memcpy(&c, msg, 4);
            memcpy(sha, (char *)msg + 4, 64);
            sha[64] = 0;
            memcpy(&lr, (char *)msg + 4 + 64, 8);
        }
        free(msg);
        if (c < 0 || c >= p->n_cells) {
            rc = err_set(e, "rank %d: a malformed work message", dist_rank());
            break;
        }
        // the model (or a training cell's distilled set) as rank 0 knows it (made by
        // another rank, perhaps)
        GridCell *cell = &p->cells[c];
        if (sha[0] != '-' && cell->kind == CELL_TRAIN && cell->pool >= 0)
            snprintf(p->pools[cell->pool].sha256, 65, "%s", sha), p->pools[cell->pool].lr = lr;
        else if (sha[0] != '-' && cell->model >= 0) snprintf(p->models[cell->model].sha256, 65, "%s", sha);
        StoreRow row;
        store_row_init(&row);
        Err ce;
        int st = grid_cell_run(w, p, c, &row, &ce);
        Buf b = {0};
        if (pack_result(&b, c, st ? 1 : 0, &row, ce.msg) || dist_send(0, TAG_RESULT, b.b, b.n, e)) rc = -1;
        free(b.b);
        store_row_free(&row);
        if (rc) break;
    }
    grid_worker_free(w);
    return rc;
}

static int send_work(GridPlan *p, int worker, int c, Err *e) {
    unsigned char msg[4 + 64 + 8]; // the cell, its input's identity, a grid pool's learned lr
    memcpy(msg, &c, 4);
    const GridCell *cell = &p->cells[c];
    const char *sha = cell->kind == CELL_TRAIN && cell->pool >= 0 ? p->pools[cell->pool].sha256
                      : cell->model >= 0                          ? p->models[cell->model].sha256
                                                                  : "";
    if (sha[0]) memcpy(msg + 4, sha, 64);
    else memset(msg + 4, '-', 64);
    double lr = cell->kind == CELL_TRAIN && cell->pool >= 0 ? p->pools[cell->pool].lr : 0;
    memcpy(msg + 4 + 64, &lr, 8);
    p->cells[c].status = CELL_RUNNING;
    return dist_send(worker, TAG_WORK, msg, sizeof(msg), e);
}

int grid_run_mpi(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Err *e) {
    if (dist_size() <= 1) return grid_run_local(p, s, o, st, e);
    if (dist_rank() != 0) return worker_loop(p, e);
    memset(st, 0, sizeof(*st));
    double t0 = time_now();
    int rc = 0, size = dist_size();
    int *last_model = calloc(size, sizeof(int)), *busy = calloc(size, sizeof(int));
    Tally t;
    if (!last_model || !busy) rc = err_set(e, "out of memory");
    if (!rc && (import_rows(p, s, o, st, e) || survey(p, s, o, st, &t, e))) rc = -1;
    for (int k = 0; k < size; k++) last_model[k] = -1;
    int in_flight = 0;
    while (!rc) {
        // hand out ready cells to idle workers
        for (int wk = 1; wk < size && !rc; wk++) {
            if (busy[wk]) continue;
            int pick = -1;
            for (int c = 0; c < p->n_cells; c++) {
                GridCell *cell = &p->cells[c];
                if (cell->status != CELL_PENDING || !in_shard(p, c, o)) continue;
                int r = ready(p, s, c, o, st, e);
                if (r < 0) {
                    rc = -1;
                    break;
                }
                if (r == 2) {
                    t.total--, t.cost_total -= cell->cost;
                    continue;
                }
                if (r == 0) continue; // waits for its training cell
                if (pick < 0) pick = c;
                if (cell->model == last_model[wk]) {
                    pick = c;
                    break;
                }
            }
            if (rc || pick < 0) break;
            if (send_work(p, wk, pick, e)) {
                rc = -1;
                break;
            }
            busy[wk] = 1 + pick;
            last_model[wk] = p->cells[pick].model;
            in_flight++;
        }
        if (rc || in_flight == 0) break;
        int src, tag;
        void *msg;
        size_t n;
        if (dist_recv(&src, &tag, &msg, &n, -1, e) != 1) {
            rc = -1;
            break;
        }
        int c, status;
        char error[ERR_MAX] = "";
        StoreRow row;
        store_row_init(&row);
        if (tag != TAG_RESULT || unpack_result(msg, n, &c, &status, &row, error, sizeof(error)) || c < 0 ||
            c >= p->n_cells || src <= 0 || src >= size || busy[src] != 1 + c) {
            free(msg);
            store_row_free(&row);
            rc = err_set(e, "a malformed result from rank %d", src);
            break;
        }
        free(msg);
        busy[src] = 0;
        in_flight--;
        if (status) {
            p->cells[c].status = CELL_FAILED;
            st->failed++;
            report(p, c, &row, error, &t, o);
            fprintf(stderr, "beard run: rank %d: %s\n", src, error);
            block_dependents(p, c, st);
        } else if (commit(p, s, c, &row, o, e)) {
            rc = -1;
        } else {
            st->ran++;
            report(p, c, &row, NULL, &t, o);
        }
        store_row_free(&row);
    }
    // cells still pending wait for a model that was never trained
    for (int c = 0; c < p->n_cells && !rc; c++)
        if (p->cells[c].status == CELL_PENDING && in_shard(p, c, o)) p->cells[c].status = CELL_BLOCKED, st->blocked++;
    for (int wk = 1; wk < size; wk++) {
        Err e2;
        dist_send(wk, TAG_STOP, "", 0, &e2);
    }
    free(last_model), free(busy);
    st->seconds = time_now() - t0;
    if (!rc && st->failed) return err_set(e, "%d cell(s) failed (see above); the others are in %s", st->failed, store_path(s));
    return rc;
}

// ----------------------------------------------------------------------------
// dry run

void grid_print_plan(const GridPlan *p, Store *s, const GridRunOptions *o, FILE *f) {
    if (s) refine_costs((GridPlan *)p, s);
    int n = 0, todo = 0, after = 0;
    double cost = 0;
    for (int c = 0; c < p->n_cells; c++) {
        const GridCell *cell = &p->cells[c];
        if (!in_shard(p, c, o)) continue;
        n++;
        const char *state = "to run";
        Err e;
        int r = grid_cell_prepare((GridPlan *)p, c, &e);
        if (r == 1) state = cell->kind == CELL_TRAIN ? "after distilling" : "after its training", after++;
        else if (r == 0 && s && !o->force) {
            int d = check_done((GridPlan *)p, s, c, &e);
            if (d == 1) state = "done";
        }
        if (strcmp(state, "done")) todo++, cost += cell->cost;
        if (cell->kind == CELL_DISTILL) {
            const GridPool *gp = &p->pools[cell->pool];
            fprintf(f, "%-8s %-19s %10.3g passes (%.3g per update x %ld)  %s\n", grid_cell_kind(cell->kind)->name, state,
                    cell->cost, gp->passes, gp->updates, cell->key);
            continue;
        }
        int nt = p->tests[p->models[cell->model].dataset].n;
        fprintf(f, "%-8s %-19s %10.3g passes (%.3g per test sample x %d)  %s\n", grid_cell_kind(cell->kind)->name, state,
                cell->cost, nt ? cell->cost / nt : 0.0, nt, cell->key);
    }
    fprintf(f, "%d cells, %d to run (%d after training), estimated %.3g forward+backward passes; %d rows from BEARD logs\n",
            n, todo, after, cost, o->n_shards > 1 && o->shard ? 0 : p->n_imports);
}
