/*
 * leaderboard.c: BEARD's boards from the store (see leaderboard.h); the figures of
 * BEARD's toolkit come from src/metrics/metrics.c, which this file feeds.
 *
 * How rows become figures. The rows of one model in one semantics (its clean cell and its
 * attack cells, per IPC) form one MetricsRun per IPC, exactly as one BEARD log does; the
 * runs of a method (dataset, method, architecture, training attack, source) at one seed
 * go through metrics_compute together, which gives the per-IPC figures (the IPC boards)
 * and the combined ones (RRM, AEM, CREI: the unified board), with bootstrap intervals
 * where the rows carry per-sample outcomes. With several seeds (grid "runs") each seed is
 * computed alone and the boards show the mean and the standard deviation over seeds.
 * The clean time t_c is the clean cell's time (BEARD's toolkit takes the smaller of the
 * two Clean times of its log; a grid times the clean pass once per semantics). Attack
 * modes that an attack does not have are simply absent (BEARD logs write the clean figure
 * there, and its toolkit excludes them; the import drops them).
 *
 * Ranking: by CREI, untargeted, beard semantics (BEARD's board), falling back to pixel
 * semantics and to targeted attacks for rows that lack it. Only rows that beard measured
 * are ranked: the full-size reference, rows from BEARD's logs (another test set size,
 * another machine) and published figures are shown below them, labelled.
 */
#include "leaderboard.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LB_MAX_IPC 16
#define LB_MAX_SEEDS 64

typedef struct {
    char dataset[32], method[64], arch[32], train_attack[48], source[16];
    int reference;
    int n_ipcs;
    char ipcs[LB_MAX_IPC][16];
    int n_seeds;
    int seeds[LB_MAX_SEEDS];
} Entity;

// one (dataset, method, arch, training, source, ipc, run, semantics): a MetricsRun
typedef struct {
    int entity, ipc, seed, sem;
    int clean;   // row index or -1
    int n_att, cap_att;
    int *att;    // row indices
} Group;

// what metrics_compute gave for one (entity, semantics, seed)
typedef struct {
    int present;
    int has_ipc[LB_MAX_IPC];
    MetricsFigures ipc_fig[LB_MAX_IPC][2];
    double ipc_clean[LB_MAX_IPC];
    MetricsFigures all_fig[2];
    double all_clean;
    double *acc, *lo, *hi; // [ipc][column][mode]
} Result;

typedef struct {
    char dataset[32];
    int n_cols;
    LbColumn *cols;
} DsColumns;

static int sem_index(const char *s) { return !strcmp(s, "pixel") ? LB_SEM_PIXEL : !strcmp(s, "beard") ? LB_SEM_BEARD : -1; }

static int ipc_cmp(const char *a, const char *b) {
    char *ea, *eb;
    long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);
    if (!*ea && !*eb && x != y) return x < y ? -1 : 1;
    return strcmp(a, b);
}

static double row_eps(const StoreRow *r) {
    cJSON *c = r->config ? cJSON_Parse(r->config) : NULL;
    double eps = NAN;
    const cJSON *v = c ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "attack"), "params") : NULL;
    v = v ? cJSON_GetObjectItemCaseSensitive(v, "eps") : NULL;
    if (cJSON_IsNumber(v)) eps = v->valuedouble;
    cJSON_Delete(c);
    return eps;
}

static int row_is_full(const StoreRow *r) {
    cJSON *c = r->config ? cJSON_Parse(r->config) : NULL;
    const cJSON *k = c ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "source"), "kind") : NULL;
    int full = cJSON_IsString(k) && !strcmp(k->valuestring, "src_dataset");
    cJSON_Delete(c);
    return full;
}

static const char *source_label(const char *src) { return !strcmp(src, "beard-log") ? "BEARD log" : "beard"; }

static LbNum num_of(const double *v, int n, double lo, double hi) {
    LbNum x = {NAN, NAN, NAN, NAN};
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) s += v[i], k++;
    if (!k) return x;
    x.v = s / k;
    if (k > 1) {
        double q = 0;
        for (int i = 0; i < n; i++)
            if (isfinite(v[i])) q += (v[i] - x.v) * (v[i] - x.v);
        x.sd = sqrt(q / k);
    } else {
        x.lo = lo, x.hi = hi;
    }
    return x;
}

const LbNum *lb_acc(const LbBoard *b, const LbEntry *en, int col, int sem, int mode) {
    return &en->acc[((size_t)col * 2 + sem) * 2 + mode];
}

// runs metrics_compute over the groups of one (entity, semantics, seed)
static int compute(const StoreRow *rows, const Group *gs, const int *sel, int n_sel, const Entity *en, const DsColumns *dc,
                   const MetricsOptions *opt, Result *res) {
    MetricsRun *runs = calloc(n_sel, sizeof(MetricsRun));
    int **col_of = calloc(n_sel, sizeof(int *)); // [run][attack] -> column
    int rc = -1;
    if (!runs || !col_of) goto done;
    for (int k = 0; k < n_sel; k++) {
        const Group *g = &gs[sel[k]];
        MetricsRun *r = &runs[k];
        snprintf(r->path, sizeof(r->path), "%s/%s/ipc%s/%s/%s/seed%d", en->dataset, en->method, en->ipcs[g->ipc], en->arch,
                 en->train_attack, g->seed);
        snprintf(r->label, sizeof(r->label), "ipc_%s", en->ipcs[g->ipc]);
        snprintf(r->method, sizeof(r->method), "%s", en->method);
        snprintf(r->dataset, sizeof(r->dataset), "%s", en->dataset);
        snprintf(r->ipc, sizeof(r->ipc), "%s", en->ipcs[g->ipc]);
        r->from_json = 1;
        r->clean_acc = NAN;
        r->clean_seconds[0] = r->clean_seconds[1] = NAN;
        if (g->clean >= 0) {
            const StoreRow *c = &rows[g->clean];
            r->has_clean = 1;
            r->clean_acc = c->clean_accuracy;
            r->clean_seconds[0] = r->clean_seconds[1] = c->seconds;
            if (c->clean_ok && c->n > 0) r->n = c->n, r->clean_ok = c->clean_ok;
        } else if (g->n_att) {
            r->has_clean = 1;
            r->clean_acc = rows[g->att[0]].clean_accuracy;
        }
        r->attacks = calloc(g->n_att + 1, sizeof(MetricsAttack));
        col_of[k] = calloc(g->n_att + 1, sizeof(int));
        if (!r->attacks || !col_of[k]) goto done;
        for (int a = 0; a < g->n_att; a++) {
            const StoreRow *ar = &rows[g->att[a]];
            int col = -1;
            for (int c = 0; c < dc->n_cols; c++)
                if (!strcmp(dc->cols[c].label, ar->attack)) col = c;
            int idx = -1;
            for (int i = 0; i < r->n_attacks; i++)
                if (col_of[k][i] == col) idx = i;
            if (idx < 0) {
                idx = r->n_attacks++;
                MetricsAttack *ma = &r->attacks[idx];
                snprintf(ma->name, sizeof(ma->name), "%.31s", ar->attack);
                for (int m = 0; m < 2; m++) ma->acc[m] = ma->seconds[m] = ma->passes[m] = ma->asr[m] = NAN;
                col_of[k][idx] = col;
            }
            MetricsAttack *ma = &r->attacks[idx];
            int m = ar->targeted ? MODE_TARGETED : MODE_UNTARGETED;
            ma->has[m] = 1;
            ma->acc[m] = ar->accuracy;
            ma->seconds[m] = ar->seconds;
            ma->passes[m] = ar->passes;
            ma->asr[m] = ar->asr;
            // per-sample outcomes only when they line up with the clean pass's
            if (ar->adv_ok && r->clean_ok && ar->n == r->n) ma->adv_ok[m] = ar->adv_ok;
        }
        if (!isfinite(r->clean_acc)) r->has_clean = 0;
    }
    // runs without a clean figure cannot give RR; leave them out
    int n_ok = 0;
    for (int k = 0; k < n_sel; k++)
        if (runs[k].has_clean && runs[k].n_attacks) {
            if (n_ok != k) {
                MetricsRun t = runs[n_ok];
                runs[n_ok] = runs[k], runs[k] = t;
                int *tc = col_of[n_ok];
                col_of[n_ok] = col_of[k], col_of[k] = tc;
            }
            n_ok++;
        }
    if (!n_ok) {
        rc = 0;
        goto done;
    }
    MetricsReport rep;
    Err e;
    if (metrics_compute(&rep, runs, n_ok, opt, &e)) {
        rc = 0;
        goto done;
    }
    res->present = 1;
    double csum = 0;
    for (int k = 0; k < n_ok; k++) {
        int ipc = -1;
        for (int i = 0; i < en->n_ipcs; i++)
            if (!strcmp(en->ipcs[i], runs[k].ipc)) ipc = i;
        if (ipc < 0) continue;
        res->has_ipc[ipc] = 1;
        res->ipc_fig[ipc][0] = rep.per_run[k][0];
        res->ipc_fig[ipc][1] = rep.per_run[k][1];
        res->ipc_clean[ipc] = runs[k].clean_acc;
        csum += runs[k].clean_acc;
        for (int a = 0; a < runs[k].n_attacks; a++) {
            int col = col_of[k][a];
            if (col < 0) continue;
            for (int m = 0; m < 2; m++) {
                if (!runs[k].attacks[a].has[m]) continue;
                size_t at = ((size_t)ipc * dc->n_cols + col) * 2 + m;
                res->acc[at] = runs[k].attacks[a].acc[m];
                res->lo[at] = rep.stats[k][a * 2 + m].acc_lo;
                res->hi[at] = rep.stats[k][a * 2 + m].acc_hi;
            }
        }
    }
    res->all_fig[0] = rep.combined[0];
    res->all_fig[1] = rep.combined[1];
    res->all_clean = csum / n_ok;
    metrics_report_free(&rep);
    rc = 0;
done:
    for (int k = 0; runs && k < n_sel; k++) free(runs[k].attacks);
    for (int k = 0; col_of && k < n_sel; k++) free(col_of[k]);
    free(runs);
    free(col_of);
    return rc;
}

static int col_order(const void *pa, const void *pb) {
    const LbColumn *a = pa, *b = pb;
    int c = strcmp(a->attack_name, b->attack_name);
    if (c) return c;
    if (isfinite(a->eps) && isfinite(b->eps) && a->eps != b->eps) return a->eps < b->eps ? -1 : 1;
    return strcmp(a->label, b->label);
}

static double rank_key(const LbEntry *e) {
    static const int order[4][2] = {{LB_SEM_BEARD, MODE_UNTARGETED}, {LB_SEM_PIXEL, MODE_UNTARGETED},
                                    {LB_SEM_BEARD, MODE_TARGETED}, {LB_SEM_PIXEL, MODE_TARGETED}};
    for (int i = 0; i < 4; i++) {
        double v = e->fig[order[i][0]][order[i][1]].crei.v;
        if (isfinite(v)) return v - 1000.0 * i; // rows with BEARD's figure first
    }
    return -INFINITY;
}

static int entry_order(const void *pa, const void *pb) {
    const LbEntry *a = pa, *b = pb;
    int ga = a->published ? 3 : a->reference ? 1 : strcmp(a->source, "beard") ? 2 : 0;
    int gb = b->published ? 3 : b->reference ? 1 : strcmp(b->source, "beard") ? 2 : 0;
    if (ga != gb) return ga < gb ? -1 : 1;
    double ka = rank_key(a), kb = rank_key(b);
    if (ka != kb) return ka > kb ? -1 : 1;
    int c = strcmp(a->method, b->method);
    return c ? c : strcmp(a->train_attack, b->train_attack);
}

static LbEntry *board_add(LbBoard *b, int n_cols) {
    LbEntry *ne = realloc(b->entries, sizeof(LbEntry) * (b->n_entries + 1));
    if (!ne) return NULL;
    b->entries = ne;
    LbEntry *en = &b->entries[b->n_entries++];
    memset(en, 0, sizeof(*en));
    en->acc = malloc(sizeof(LbNum) * ((size_t)n_cols * 4 + 1));
    if (!en->acc) {
        b->n_entries--;
        return NULL;
    }
    LbNum nan = {NAN, NAN, NAN, NAN};
    for (int i = 0; i < n_cols * 4; i++) en->acc[i] = nan;
    for (int s = 0; s < 2; s++) {
        en->clean[s] = nan;
        for (int m = 0; m < 2; m++)
            en->fig[s][m].crei = en->fig[s][m].rr = en->fig[s][m].ae = en->fig[s][m].ae_passes = en->fig[s][m].crei_passes = nan;
    }
    return en;
}

static LbBoard *get_board(Leaderboard *lb, const char *dataset, const char *ipc) {
    for (int i = 0; i < lb->n_boards; i++)
        if (!strcmp(lb->boards[i].dataset, dataset) && !strcmp(lb->boards[i].ipc, ipc)) return &lb->boards[i];
    LbBoard *nb = realloc(lb->boards, sizeof(LbBoard) * (lb->n_boards + 1));
    if (!nb) return NULL;
    lb->boards = nb;
    LbBoard *b = &lb->boards[lb->n_boards++];
    memset(b, 0, sizeof(*b));
    snprintf(b->dataset, sizeof(b->dataset), "%s", dataset);
    snprintf(b->ipc, sizeof(b->ipc), "%s", ipc);
    return b;
}

static int board_order(const void *pa, const void *pb) {
    const LbBoard *a = pa, *b = pb;
    // BEARD's order of datasets, then the unified board, then IPCs ascending
    static const char *const ds[] = {"CIFAR10", "CIFAR100", "TinyImageNet"};
    int ia = 99, ib = 99;
    for (int i = 0; i < 3; i++) {
        if (!strcmp(a->dataset, ds[i])) ia = i;
        if (!strcmp(b->dataset, ds[i])) ib = i;
    }
    if (ia != ib) return ia < ib ? -1 : 1;
    int c = strcmp(a->dataset, b->dataset);
    if (c) return c;
    int ua = !strcmp(a->ipc, "all"), ub = !strcmp(b->ipc, "all");
    if (ua != ub) return ua ? -1 : 1;
    return ipc_cmp(a->ipc, b->ipc);
}

static void fill_fig(LbFig *f, const MetricsFigures *const *figs, int n) {
    double v[5][LB_MAX_SEEDS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!figs[i]) continue;
        v[0][k] = figs[i]->crei, v[1][k] = figs[i]->rr, v[2][k] = figs[i]->ae;
        v[3][k] = figs[i]->ae_passes, v[4][k] = figs[i]->crei_passes;
        if (!f->note[0] && figs[i]->note[0]) snprintf(f->note, sizeof(f->note), "%s", figs[i]->note);
        f->n_attacks = figs[i]->n_attacks;
        k++;
    }
    if (!k) return;
    const MetricsFigures *one = NULL;
    for (int i = 0; i < n && !one; i++) one = figs[i];
    f->crei = num_of(v[0], k, one->crei_lo, one->crei_hi);
    f->rr = num_of(v[1], k, one->rr_lo, one->rr_hi);
    f->ae = num_of(v[2], k, NAN, NAN);
    f->ae_passes = num_of(v[3], k, NAN, NAN);
    f->crei_passes = num_of(v[4], k, NAN, NAN);
    f->ok = f->n_attacks > 0 && (isfinite(f->crei.v) || isfinite(f->rr.v));
}

int leaderboard_build(Leaderboard *lb, const StoreRow *rows, int n_rows, const PublishedRow *pub, int n_pub,
                      const MetricsOptions *opt, Err *e) {
    memset(lb, 0, sizeof(*lb));
    lb->opt = *opt;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(lb->generated, sizeof(lb->generated), "%Y-%m-%d %H:%M UTC", &tm);
    Entity *ents = NULL;
    int n_ents = 0;
    Group *gs = NULL;
    int n_gs = 0;
    DsColumns *dcs = NULL;
    int n_dcs = 0, rc = -1;
    // columns per dataset
    for (int i = 0; i < n_rows; i++) {
        const StoreRow *r = &rows[i];
        if (strcmp(r->kind, "attack") || !r->attack[0]) continue;
        DsColumns *dc = NULL;
        for (int d = 0; d < n_dcs; d++)
            if (!strcmp(dcs[d].dataset, r->dataset)) dc = &dcs[d];
        if (!dc) {
            DsColumns *nd = realloc(dcs, sizeof(DsColumns) * (n_dcs + 1));
            if (!nd) goto oom;
            dcs = nd;
            dc = &dcs[n_dcs++];
            memset(dc, 0, sizeof(*dc));
            snprintf(dc->dataset, sizeof(dc->dataset), "%s", r->dataset);
        }
        int have = 0;
        for (int c = 0; c < dc->n_cols; c++) have |= !strcmp(dc->cols[c].label, r->attack);
        if (have) continue;
        LbColumn *nc = realloc(dc->cols, sizeof(LbColumn) * (dc->n_cols + 1));
        if (!nc) goto oom;
        dc->cols = nc;
        LbColumn *col = &dc->cols[dc->n_cols++];
        memset(col, 0, sizeof(*col));
        snprintf(col->label, sizeof(col->label), "%s", r->attack);
        snprintf(col->attack_name, sizeof(col->attack_name), "%.31s", r->attack_name[0] ? r->attack_name : r->attack);
        col->eps = row_eps(r);
    }
    for (int d = 0; d < n_dcs; d++) qsort(dcs[d].cols, dcs[d].n_cols, sizeof(LbColumn), col_order);
    // entities and groups
    for (int i = 0; i < n_rows; i++) {
        const StoreRow *r = &rows[i];
        int is_train = !strcmp(r->kind, "train");
        if (!is_train && strcmp(r->kind, "clean") && strcmp(r->kind, "attack")) continue;
        int ei = -1;
        for (int k = 0; k < n_ents && ei < 0; k++)
            if (!strcmp(ents[k].dataset, r->dataset) && !strcmp(ents[k].method, r->method) && !strcmp(ents[k].arch, r->arch) &&
                !strcmp(ents[k].train_attack, r->train_attack) && !strcmp(ents[k].source, r->source))
                ei = k;
        if (ei < 0) {
            Entity *ne = realloc(ents, sizeof(Entity) * (n_ents + 1));
            if (!ne) goto oom;
            ents = ne;
            ei = n_ents++;
            Entity *en = &ents[ei];
            memset(en, 0, sizeof(*en));
            snprintf(en->dataset, sizeof(en->dataset), "%s", r->dataset);
            snprintf(en->method, sizeof(en->method), "%s", r->method);
            snprintf(en->arch, sizeof(en->arch), "%s", r->arch);
            snprintf(en->train_attack, sizeof(en->train_attack), "%s", r->train_attack);
            snprintf(en->source, sizeof(en->source), "%s", r->source);
            en->reference = !strcasecmp(r->method, "Full");
        }
        Entity *en = &ents[ei];
        if (is_train) {
            en->reference |= row_is_full(r);
            continue;
        }
        int sem = sem_index(r->semantics);
        if (sem < 0) continue;
        int ipc = -1;
        for (int k = 0; k < en->n_ipcs; k++)
            if (!strcmp(en->ipcs[k], r->ipc)) ipc = k;
        if (ipc < 0) {
            if (en->n_ipcs == LB_MAX_IPC) continue;
            ipc = en->n_ipcs++;
            snprintf(en->ipcs[ipc], sizeof(en->ipcs[ipc]), "%s", r->ipc);
        }
        int seed = -1;
        for (int k = 0; k < en->n_seeds; k++)
            if (en->seeds[k] == r->run) seed = k;
        if (seed < 0) {
            if (en->n_seeds == LB_MAX_SEEDS) continue;
            seed = en->n_seeds++;
            en->seeds[seed] = r->run;
        }
        int gi = -1;
        for (int k = 0; k < n_gs && gi < 0; k++)
            if (gs[k].entity == ei && gs[k].ipc == ipc && gs[k].seed == seed && gs[k].sem == sem) gi = k;
        if (gi < 0) {
            Group *ng = realloc(gs, sizeof(Group) * (n_gs + 1));
            if (!ng) goto oom;
            gs = ng;
            gi = n_gs++;
            gs[gi] = (Group){.entity = ei, .ipc = ipc, .seed = seed, .sem = sem, .clean = -1};
        }
        Group *g = &gs[gi];
        if (!strcmp(r->kind, "clean")) g->clean = i;
        else {
            if (g->n_att == g->cap_att) {
                g->cap_att = g->cap_att ? 2 * g->cap_att : 16;
                int *na = realloc(g->att, sizeof(int) * g->cap_att);
                if (!na) goto oom;
                g->att = na;
            }
            g->att[g->n_att++] = i;
        }
    }
    // IPCs in order (the groups keep indices: remap)
    for (int k = 0; k < n_ents; k++) {
        Entity *en = &ents[k];
        int perm[LB_MAX_IPC];
        for (int i = 0; i < en->n_ipcs; i++) perm[i] = i;
        for (int i = 1; i < en->n_ipcs; i++)
            for (int j = i; j > 0 && ipc_cmp(en->ipcs[perm[j - 1]], en->ipcs[perm[j]]) > 0; j--) {
                int t = perm[j];
                perm[j] = perm[j - 1], perm[j - 1] = t;
            }
        char sorted[LB_MAX_IPC][16];
        int inv[LB_MAX_IPC];
        for (int i = 0; i < en->n_ipcs; i++) memcpy(sorted[i], en->ipcs[perm[i]], 16), inv[perm[i]] = i;
        memcpy(en->ipcs, sorted, sizeof(sorted[0]) * en->n_ipcs);
        for (int g = 0; g < n_gs; g++)
            if (gs[g].entity == k) gs[g].ipc = inv[gs[g].ipc];
    }
    // figures per entity, semantics and seed
    for (int k = 0; k < n_ents; k++) {
        Entity *en = &ents[k];
        if (!en->n_ipcs) continue;
        const DsColumns *dc = NULL;
        static const DsColumns none = {"", 0, NULL};
        for (int d = 0; d < n_dcs; d++)
            if (!strcmp(dcs[d].dataset, en->dataset)) dc = &dcs[d];
        if (!dc) dc = &none;
        size_t per = (size_t)en->n_ipcs * dc->n_cols * 2 + 1;
        Result *res = calloc((size_t)2 * en->n_seeds, sizeof(Result));
        if (!res) goto oom;
        int *sel = malloc(sizeof(int) * (n_gs + 1));
        int bad = !sel;
        for (int s = 0; s < 2 && !bad; s++)
            for (int sd = 0; sd < en->n_seeds && !bad; sd++) {
                Result *rs = &res[s * en->n_seeds + sd];
                rs->acc = malloc(sizeof(double) * per), rs->lo = malloc(sizeof(double) * per), rs->hi = malloc(sizeof(double) * per);
                if (!rs->acc || !rs->lo || !rs->hi) {
                    bad = 1;
                    break;
                }
                for (size_t i = 0; i < per; i++) rs->acc[i] = rs->lo[i] = rs->hi[i] = NAN;
                int n_sel = 0;
                for (int g = 0; g < n_gs; g++)
                    if (gs[g].entity == k && gs[g].sem == s && gs[g].seed == sd) sel[n_sel++] = g;
                // in IPC order
                for (int i = 1; i < n_sel; i++)
                    for (int j = i; j > 0 && gs[sel[j - 1]].ipc > gs[sel[j]].ipc; j--) {
                        int t = sel[j];
                        sel[j] = sel[j - 1], sel[j - 1] = t;
                    }
                if (n_sel && compute(rows, gs, sel, n_sel, en, dc, opt, rs)) bad = 1;
            }
        free(sel);
        // boards: unified and per IPC
        for (int b = -1; b < en->n_ipcs && !bad; b++) {
            LbBoard *bd = get_board(lb, en->dataset, b < 0 ? "all" : en->ipcs[b]);
            if (!bd) {
                bad = 1;
                break;
            }
            if (!bd->columns && dc->n_cols) {
                bd->columns = malloc(sizeof(LbColumn) * dc->n_cols);
                if (!bd->columns) {
                    bad = 1;
                    break;
                }
                memcpy(bd->columns, dc->cols, sizeof(LbColumn) * dc->n_cols);
                bd->n_columns = dc->n_cols;
            }
            int any = 0;
            for (int i = 0; i < 2 * en->n_seeds; i++) any |= res[i].present && (b < 0 || res[i].has_ipc[b]);
            if (!any) continue;
            LbEntry *le = board_add(bd, bd->n_columns);
            if (!le) {
                bad = 1;
                break;
            }
            snprintf(le->method, sizeof(le->method), "%s", en->method);
            snprintf(le->arch, sizeof(le->arch), "%s", en->arch);
            snprintf(le->train_attack, sizeof(le->train_attack), "%s", en->train_attack);
            snprintf(le->source, sizeof(le->source), "%s", source_label(en->source));
            le->reference = en->reference;
            le->n_seeds = en->n_seeds;
            for (int i = b < 0 ? 0 : b; i < (b < 0 ? en->n_ipcs : b + 1); i++)
                snprintf(le->ipcs + strlen(le->ipcs), sizeof(le->ipcs) - strlen(le->ipcs), "%s%s", strlen(le->ipcs) ? ", " : "",
                         en->ipcs[i]);
            for (int s = 0; s < 2; s++) {
                const Result *rs = &res[s * en->n_seeds];
                double cl[LB_MAX_SEEDS];
                int nc = 0;
                for (int m = 0; m < 2; m++) {
                    const MetricsFigures *figs[LB_MAX_SEEDS];
                    for (int sd = 0; sd < en->n_seeds; sd++) {
                        const Result *r = &rs[sd];
                        figs[sd] = !r->present ? NULL : b < 0 ? &r->all_fig[m] : r->has_ipc[b] ? &r->ipc_fig[b][m] : NULL;
                    }
                    fill_fig(&le->fig[s][m], figs, en->n_seeds);
                }
                for (int sd = 0; sd < en->n_seeds; sd++) {
                    const Result *r = &rs[sd];
                    if (!r->present) continue;
                    if (b < 0) cl[nc++] = r->all_clean;
                    else if (r->has_ipc[b]) cl[nc++] = r->ipc_clean[b];
                }
                le->clean[s] = num_of(cl, nc, NAN, NAN);
                // per-attack accuracy: this IPC, or the mean over the IPCs (unified)
                for (int c = 0; c < bd->n_columns; c++) {
                    int dcc = -1;
                    for (int q = 0; q < dc->n_cols; q++)
                        if (!strcmp(dc->cols[q].label, bd->columns[c].label)) dcc = q;
                    if (dcc < 0) continue;
                    for (int m = 0; m < 2; m++) {
                        double v[LB_MAX_SEEDS], lo = NAN, hi = NAN;
                        int nv = 0;
                        for (int sd = 0; sd < en->n_seeds; sd++) {
                            const Result *r = &rs[sd];
                            if (!r->present) continue;
                            double sum = 0;
                            int k2 = 0;
                            for (int i = b < 0 ? 0 : b; i < (b < 0 ? en->n_ipcs : b + 1); i++) {
                                size_t at = ((size_t)i * dc->n_cols + dcc) * 2 + m;
                                if (isfinite(r->acc[at])) {
                                    sum += r->acc[at], k2++;
                                    lo = r->lo[at], hi = r->hi[at];
                                }
                            }
                            if (k2) v[nv++] = sum / k2;
                            if (k2 != 1) lo = hi = NAN; // intervals are per IPC
                        }
                        le->acc[((size_t)c * 2 + s) * 2 + m] = num_of(v, nv, lo, hi);
                    }
                }
            }
        }
        for (int i = 0; i < 2 * en->n_seeds; i++) free(res[i].acc), free(res[i].lo), free(res[i].hi);
        free(res);
        if (bad) goto oom;
    }
    // test-set sizes behind each board (measured rows)
    for (int i = 0; i < n_rows; i++) {
        if (strcmp(rows[i].source, "run") || strcmp(rows[i].kind, "attack")) continue;
        for (int b = 0; b < lb->n_boards; b++)
            if (!strcmp(lb->boards[b].dataset, rows[i].dataset) &&
                (!strcmp(lb->boards[b].ipc, "all") || !strcmp(lb->boards[b].ipc, rows[i].ipc)))
                lb->boards[b].n_test = MAX(lb->boards[b].n_test, rows[i].n);
    }
    // published rows
    for (int i = 0; i < n_pub; i++) {
        const PublishedRow *p = &pub[i];
        LbBoard *bd = get_board(lb, p->dataset, p->ipc);
        if (!bd) goto oom;
        LbEntry *le = NULL;
        for (int k = 0; k < bd->n_entries && !le; k++)
            if (bd->entries[k].published && !strcmp(bd->entries[k].method, p->method) &&
                !strcmp(bd->entries[k].train_attack, p->train_attack) && !strncmp(bd->entries[k].source + 11, p->source, 64))
                le = &bd->entries[k];
        if (!le && !(le = board_add(bd, bd->n_columns))) goto oom;
        le->published = 1;
        snprintf(le->method, sizeof(le->method), "%s", p->method);
        snprintf(le->arch, sizeof(le->arch), "%s", p->arch);
        snprintf(le->train_attack, sizeof(le->train_attack), "%s", p->train_attack);
        snprintf(le->source, sizeof(le->source), "published: %s", p->source);
        snprintf(le->ipcs, sizeof(le->ipcs), "%s", p->ipc);
        int s = sem_index(p->semantics), m = !strcmp(p->mode, "targeted") ? MODE_TARGETED : MODE_UNTARGETED;
        if (s < 0) continue;
        LbFig *f = &le->fig[s][m];
        f->crei.v = p->crei, f->rr.v = p->rrm, f->ae.v = p->aem;
        f->ok = 1;
        if (p->note[0]) snprintf(f->note, sizeof(f->note), "%s", p->note);
    }
    // order and ranks
    qsort(lb->boards, lb->n_boards, sizeof(LbBoard), board_order);
    for (int b = 0; b < lb->n_boards; b++) {
        LbBoard *bd = &lb->boards[b];
        qsort(bd->entries, bd->n_entries, sizeof(LbEntry), entry_order);
        int r = 0;
        for (int k = 0; k < bd->n_entries; k++) {
            LbEntry *le = &bd->entries[k];
            if (!le->published && !le->reference && !strcmp(le->source, "beard") && isfinite(rank_key(le))) le->rank = ++r;
        }
    }
    rc = 0;
    goto done;
oom:
    err_set(e, "out of memory building the leaderboard");
    leaderboard_free(lb);
done:
    for (int g = 0; g < n_gs; g++) free(gs[g].att);
    free(gs);
    free(ents);
    for (int d = 0; d < n_dcs; d++) free(dcs[d].cols);
    free(dcs);
    return rc;
}

void leaderboard_free(Leaderboard *lb) {
    for (int b = 0; b < lb->n_boards; b++) {
        for (int k = 0; k < lb->boards[b].n_entries; k++) free(lb->boards[b].entries[k].acc);
        free(lb->boards[b].entries);
        free(lb->boards[b].columns);
    }
    free(lb->boards);
    memset(lb, 0, sizeof(*lb));
}

// ----------------------------------------------------------------------------
// Markdown, CSV, JSON

static const char *sem_name(int s) { return s == LB_SEM_PIXEL ? "pixel" : "beard"; }

static void md_num(FILE *f, const LbNum *x) {
    if (!isfinite(x->v)) {
        fputs(" n/a |", f);
        return;
    }
    fprintf(f, " %.2f", x->v);
    if (isfinite(x->sd)) fprintf(f, " ± %.2f", x->sd);
    else if (isfinite(x->lo)) fprintf(f, " [%.2f, %.2f]", x->lo, x->hi);
    fputs(" |", f);
}

static const char *row_label(const LbEntry *en, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s", en->method, strcmp(en->train_attack, "None") ? " + " : "",
             strcmp(en->train_attack, "None") ? en->train_attack : "");
    if (strcmp(en->train_attack, "None")) snprintf(buf + strlen(buf), n - strlen(buf), "-AT");
    return buf;
}

int leaderboard_markdown(const Leaderboard *lb, FILE *f) {
    fprintf(f, "# BEARD leaderboards\n\nGenerated by beard %s from %s, %s. RR, AE, CREI as in BEARD (arXiv:2411.09265), "
               "alpha %.2g, %s metrics. `beard` semantics reproduces BEARD's threat model (attacks on normalised tensors); "
               "`pixel` is the standard one. Brackets: bootstrap 95%% interval over test samples; ±: std over seeds.\n",
            BEARD_VERSION, lb->store, lb->generated, lb->opt.alpha, metrics_type_name(lb->opt.type));
    static const int groups[4][2] = {{LB_SEM_BEARD, MODE_UNTARGETED}, {LB_SEM_PIXEL, MODE_UNTARGETED},
                                     {LB_SEM_BEARD, MODE_TARGETED}, {LB_SEM_PIXEL, MODE_TARGETED}};
    for (int b = 0; b < lb->n_boards; b++) {
        const LbBoard *bd = &lb->boards[b];
        fprintf(f, "\n## %s, %s\n\n", bd->dataset, strcmp(bd->ipc, "all") ? bd->ipc : "unified (all IPCs)");
        if (bd->n_test) fprintf(f, "%d test images.\n\n", bd->n_test);
        fputs("| Rank | Method | Arch | Source | IPC | Clean |", f);
        for (int g = 0; g < 4; g++)
            fprintf(f, " CREI %s %s | RRM | AEM | AEM passes |", sem_name(groups[g][0]), metrics_mode_name(groups[g][1]));
        fputs("\n|---|---|---|---|---|---|", f);
        for (int g = 0; g < 4; g++) fputs("---|---|---|---|", f);
        fputc('\n', f);
        for (int k = 0; k < bd->n_entries; k++) {
            const LbEntry *en = &bd->entries[k];
            char lab[160];
            if (en->rank) fprintf(f, "| %d |", en->rank);
            else fprintf(f, "| %s |", en->published ? "pub" : "ref");
            fprintf(f, " %s | %s | %s | %s |", row_label(en, lab, sizeof(lab)), en->arch, en->source, en->ipcs);
            md_num(f, &en->clean[LB_SEM_BEARD]);
            for (int g = 0; g < 4; g++) {
                const LbFig *fg = &en->fig[groups[g][0]][groups[g][1]];
                md_num(f, &fg->crei), md_num(f, &fg->rr), md_num(f, &fg->ae), md_num(f, &fg->ae_passes);
            }
            fputc('\n', f);
        }
        if (bd->n_columns) {
            fprintf(f, "\nRobust accuracy (%%) per attack%s:\n\n| Method | Source |", strcmp(bd->ipc, "all") ? "" : ", mean over IPCs");
            for (int c = 0; c < bd->n_columns; c++)
                for (int g = 0; g < 4; g++)
                    fprintf(f, " %s %s %s |", bd->columns[c].label, sem_name(groups[g][0]),
                            groups[g][1] == MODE_TARGETED ? "T" : "U");
            fputs("\n|---|---|", f);
            for (int c = 0; c < bd->n_columns * 4; c++) fputs("---|", f);
            fputc('\n', f);
            for (int k = 0; k < bd->n_entries; k++) {
                const LbEntry *en = &bd->entries[k];
                if (en->published) continue;
                char lab[160];
                fprintf(f, "| %s | %s |", row_label(en, lab, sizeof(lab)), en->source);
                for (int c = 0; c < bd->n_columns; c++)
                    for (int g = 0; g < 4; g++) md_num(f, lb_acc(bd, en, c, groups[g][0], groups[g][1]));
                fputc('\n', f);
            }
        }
    }
    return ferror(f) ? -1 : 0;
}

static void csv_n(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    fputc(',', f);
}

int leaderboard_csv(const Leaderboard *lb, FILE *f) {
    fputs("dataset,ipc,rank,method,arch,train_attack,source,semantics,mode,clean,crei,crei_sd,crei_lo,crei_hi,rrm,rrm_sd,"
          "rrm_lo,rrm_hi,aem,aem_sd,aem_passes,crei_passes,n_test,note\n",
          f);
    for (int b = 0; b < lb->n_boards; b++) {
        const LbBoard *bd = &lb->boards[b];
        for (int k = 0; k < bd->n_entries; k++) {
            const LbEntry *en = &bd->entries[k];
            for (int s = 0; s < 2; s++)
                for (int m = 1; m >= 0; m--) {
                    const LbFig *fg = &en->fig[s][m];
                    if (!fg->ok) continue;
                    fprintf(f, "%s,%s,", bd->dataset, bd->ipc);
                    if (en->rank) fprintf(f, "%d", en->rank);
                    fprintf(f, ",%s,%s,%s,%s,%s,%s,", en->method, en->arch, en->train_attack, en->source, sem_name(s),
                            metrics_mode_name(m));
                    csv_n(f, en->clean[s].v);
                    csv_n(f, fg->crei.v), csv_n(f, fg->crei.sd), csv_n(f, fg->crei.lo), csv_n(f, fg->crei.hi);
                    csv_n(f, fg->rr.v), csv_n(f, fg->rr.sd), csv_n(f, fg->rr.lo), csv_n(f, fg->rr.hi);
                    csv_n(f, fg->ae.v), csv_n(f, fg->ae.sd), csv_n(f, fg->ae_passes.v), csv_n(f, fg->crei_passes.v);
                    fprintf(f, "%d,", bd->n_test);
                    for (const char *p = fg->note; *p; p++) fputc(*p == ',' || *p == '\n' ? ';' : *p, f);
                    fputc('\n', f);
                }
        }
    }
    return ferror(f) ? -1 : 0;
}

static cJSON *num_json(const LbNum *x) {
    cJSON *o = cJSON_CreateObject();
    if (isfinite(x->v)) cJSON_AddNumberToObject(o, "value", x->v);
    else cJSON_AddNullToObject(o, "value");
    if (isfinite(x->sd)) cJSON_AddNumberToObject(o, "sd", x->sd);
    if (isfinite(x->lo)) cJSON_AddNumberToObject(o, "ci95_lo", x->lo), cJSON_AddNumberToObject(o, "ci95_hi", x->hi);
    return o;
}

cJSON *leaderboard_json(const Leaderboard *lb) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "generated_by", "beard " BEARD_VERSION);
    cJSON_AddStringToObject(root, "store", lb->store);
    cJSON_AddStringToObject(root, "generated", lb->generated);
    cJSON_AddNumberToObject(root, "alpha", lb->opt.alpha);
    cJSON_AddStringToObject(root, "metrics_type", metrics_type_name(lb->opt.type));
    cJSON *boards = cJSON_AddArrayToObject(root, "boards");
    for (int b = 0; b < lb->n_boards; b++) {
        const LbBoard *bd = &lb->boards[b];
        cJSON *bo = cJSON_CreateObject();
        cJSON_AddStringToObject(bo, "dataset", bd->dataset);
        cJSON_AddStringToObject(bo, "ipc", bd->ipc);
        cJSON_AddNumberToObject(bo, "n_test", bd->n_test);
        cJSON *cols = cJSON_AddArrayToObject(bo, "attacks");
        for (int c = 0; c < bd->n_columns; c++) cJSON_AddItemToArray(cols, cJSON_CreateString(bd->columns[c].label));
        cJSON *rows = cJSON_AddArrayToObject(bo, "rows");
        for (int k = 0; k < bd->n_entries; k++) {
            const LbEntry *en = &bd->entries[k];
            cJSON *r = cJSON_CreateObject();
            if (en->rank) cJSON_AddNumberToObject(r, "rank", en->rank);
            else cJSON_AddNullToObject(r, "rank");
            cJSON_AddStringToObject(r, "method", en->method);
            cJSON_AddStringToObject(r, "arch", en->arch);
            cJSON_AddStringToObject(r, "train_attack", en->train_attack);
            cJSON_AddStringToObject(r, "source", en->source);
            cJSON_AddBoolToObject(r, "reference", en->reference);
            cJSON_AddBoolToObject(r, "published", en->published);
            cJSON_AddStringToObject(r, "ipcs", en->ipcs);
            cJSON_AddNumberToObject(r, "seeds", en->n_seeds);
            for (int s = 0; s < 2; s++) {
                cJSON *so = cJSON_AddObjectToObject(r, sem_name(s));
                cJSON_AddItemToObject(so, "clean", num_json(&en->clean[s]));
                for (int m = 0; m < 2; m++) {
                    const LbFig *fg = &en->fig[s][m];
                    if (!fg->ok) continue;
                    cJSON *mo = cJSON_AddObjectToObject(so, metrics_mode_name(m));
                    cJSON_AddItemToObject(mo, "CREI", num_json(&fg->crei));
                    cJSON_AddItemToObject(mo, "RRM", num_json(&fg->rr));
                    cJSON_AddItemToObject(mo, "AEM", num_json(&fg->ae));
                    cJSON_AddItemToObject(mo, "AEM_passes", num_json(&fg->ae_passes));
                    cJSON_AddItemToObject(mo, "CREI_passes", num_json(&fg->crei_passes));
                    if (fg->note[0]) cJSON_AddStringToObject(mo, "note", fg->note);
                    cJSON *acc = cJSON_AddObjectToObject(mo, "accuracy");
                    for (int c = 0; c < bd->n_columns && !en->published; c++)
                        cJSON_AddItemToObject(acc, bd->columns[c].label, num_json(lb_acc(bd, en, c, s, m)));
                }
            }
            cJSON_AddItemToArray(rows, r);
        }
        cJSON_AddItemToArray(boards, bo);
    }
    return root;
}
