/*
 * common.c: what attack implementations share: parameter tables, forward/gradient/
 * Jacobian calls through the Net (which counts passes), per-sample random streams and
 * the cross-entropy loss in torchattacks' form.
 */
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>

#include "../nn/nn.h"
#include "attack.h"

// "random-start" == "random_start" == "RANDOM_START"
static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char ca = *a == '-' ? '_' : (char)tolower((unsigned char)*a);
        char cb = *b == '-' ? '_' : (char)tolower((unsigned char)*b);
        if (ca != cb) return 0;
    }
    return *a == *b;
}

void attack_params_init(AttackParams *p, const AttackDef *def, Preset preset) {
    memset(p, 0, sizeof(*p));
    int n_text = 0;
    for (const AttackParamDef *d = def->params; d && d->name; d++) {
        assert(p->n < ATTACK_MAX_PARAMS);
        double v = d->torchattacks;
        if (preset == PRESET_BEARD && !isnan(d->beard)) v = d->beard;
        if (preset == PRESET_FRA31 && !isnan(d->fra31)) v = d->fra31;
        if (d->type == ATTACK_PARAM_TEXT) {
            assert(n_text < ATTACK_MAX_TEXT);
            snprintf(p->text[n_text], ATTACK_TEXT_LEN, "%s", d->text ? d->text : "");
            v = n_text++;
        }
        p->names[p->n] = d->name;
        p->values[p->n] = v;
        p->n++;
    }
}

static int param_index(const AttackParams *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (same_name(p->names[i], name)) return i;
    return -1;
}

int attack_params_set(AttackParams *p, const char *name, double value) {
    int i = param_index(p, name);
    if (i < 0) return -1;
    p->values[i] = value;
    return 0;
}

const AttackParamDef *attack_param_def(const AttackDef *def, const char *name) {
    for (const AttackParamDef *d = def->params; d && d->name; d++)
        if (same_name(d->name, name)) return d;
    return NULL;
}

// index of word in a comma-separated list (case-insensitive), or -1
static int choice_index(const char *choices, const char *word) {
    int idx = 0;
    for (const char *p = choices; p && *p; idx++) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (strlen(word) == len && !strncasecmp(p, word, len)) return idx;
        p = c ? c + 1 : NULL;
    }
    return -1;
}

static int choice_count(const char *choices) {
    int count = 1;
    for (const char *c = choices; c && *c; c++) count += *c == ',';
    return count;
}

int attack_params_set_text(AttackParams *p, const AttackDef *def, const char *name, const char *text) {
    const AttackParamDef *d = attack_param_def(def, name);
    int i = param_index(p, name);
    if (!d || i < 0) return -1;
    if (d->type == ATTACK_PARAM_TEXT) {
        int slot = (int)p->values[i];
        if (strlen(text) >= ATTACK_TEXT_LEN) return -2;
        snprintf(p->text[slot], ATTACK_TEXT_LEN, "%s", text);
        return 0;
    }
    double v;
    if (d->type == ATTACK_PARAM_CHOICE && choice_index(d->choices, text) >= 0) v = choice_index(d->choices, text);
    else if (!strcasecmp(text, "true") || !strcasecmp(text, "yes")) v = 1;
    else if (!strcasecmp(text, "false") || !strcasecmp(text, "no")) v = 0;
    else if (parse_number(text, &v)) return -2;
    p->values[i] = v;
    return 0;
}

// %g with enough digits to tell values apart, and integers written out in full
static void fmt_value(char *buf, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e18) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.10g", v);
}

const char *attack_param_range_text(const AttackParamDef *d, char *buf, size_t n) {
    char lo[32], hi[32];
    fmt_value(lo, sizeof(lo), d->lo);
    fmt_value(hi, sizeof(hi), d->hi);
    switch (d->type) {
    case ATTACK_PARAM_REAL: snprintf(buf, n, "a number in %s%s, %s]", d->lo_open ? "(" : "[", lo, hi); break;
    case ATTACK_PARAM_INT: snprintf(buf, n, "an integer in [%s, %s]", lo, hi); break;
    case ATTACK_PARAM_BOOL: snprintf(buf, n, "yes or no (1 or 0)"); break;
    case ATTACK_PARAM_CHOICE: {
        size_t off = (size_t)snprintf(buf, n, "one of ");
        for (const char *c = d->choices; *c && off + 1 < n; c++) {
            if (*c == ',') off += (size_t)snprintf(buf + off, n - off, ", ");
            else buf[off++] = *c, buf[off] = 0;
        }
        break;
    }
    case ATTACK_PARAM_TEXT: snprintf(buf, n, "text"); break;
    default: snprintf(buf, n, "(undeclared)"); break;
    }
    return buf;
}

int attack_params_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e) {
    for (const AttackParamDef *d = def->params; d && d->name; d++) {
        int i = param_index(p, d->name);
        if (i < 0) return err_set(e, "%s: parameter %s is missing", def->name, d->name);
        double v = p->values[i];
        char range[128], val[48];
        attack_param_range_text(d, range, sizeof(range));
        fmt_value(val, sizeof(val), v);
        int ok;
        switch (d->type) {
        case ATTACK_PARAM_REAL: ok = (d->lo_open ? v > d->lo : v >= d->lo) && v <= d->hi; break;
        case ATTACK_PARAM_INT: ok = v >= d->lo && v <= d->hi && v == floor(v); break;
        case ATTACK_PARAM_BOOL: ok = v == 0 || v == 1; break;
        case ATTACK_PARAM_CHOICE: ok = v >= 0 && v < choice_count(d->choices) && v == floor(v); break;
        case ATTACK_PARAM_TEXT: ok = 1; break;
        default: return err_set(e, "%s: parameter %s has no declared type", def->name, d->name);
        }
        if (!ok) return err_set(e, "%s: %s must be %s, not %s", def->name, d->name, range, val);
    }
    if (def->check && def->check(def, p, shape, e)) return -1;
    return 0;
}

int attack_check_norm_eps(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e) {
    double eps = attack_params_get(p, "eps");
    if (attack_params_get(p, "norm") == 0 && eps > 1)
        return err_set(e, "%s: eps must be in [0, 1] under the Linf norm, not %.10g", def->name, eps);
    return 0;
}

const char *attack_param_text(const AttackParams *p, const AttackDef *def, int i, char *buf, size_t n) {
    const AttackParamDef *d = attack_param_def(def, p->names[i]);
    if (d && d->type == ATTACK_PARAM_TEXT) {
        snprintf(buf, n, "%s", p->text[(int)p->values[i]]);
        return buf;
    }
    if (d && d->type == ATTACK_PARAM_CHOICE) {
        int want = (int)p->values[i], idx = 0;
        for (const char *c = d->choices; c && *c; idx++) {
            const char *comma = strchr(c, ',');
            size_t len = comma ? (size_t)(comma - c) : strlen(c);
            if (idx == want) {
                snprintf(buf, n, "%.*s", (int)len, c);
                return buf;
            }
            c = comma ? comma + 1 : NULL;
        }
    }
    snprintf(buf, n, "%.10g", p->values[i]);
    return buf;
}

double attack_params_get(const AttackParams *p, const char *name) {
    int i = param_index(p, name);
    assert(i >= 0 && "attack reads a parameter it does not declare");
    return i >= 0 ? p->values[i] : NAN;
}

const char *attack_params_get_str(const AttackParams *p, const char *name) {
    int i = param_index(p, name);
    assert(i >= 0 && "attack reads a parameter it does not declare");
    return i >= 0 ? p->text[(int)p->values[i]] : "";
}

double attack_param(const AttackCtx *ctx, const char *name) { return attack_params_get(ctx->params, name); }
int attack_param_int(const AttackCtx *ctx, const char *name) { return (int)lround(attack_param(ctx, name)); }
const char *attack_param_str(const AttackCtx *ctx, const char *name) { return attack_params_get_str(ctx->params, name); }

// ----------------------------------------------------------------------------
// names: BEARD's variants and "NAME(k=v, ...)"

static int trim_copy(char *dst, size_t n, const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len >= n) return -1;
    memcpy(dst, s, len);
    dst[len] = 0;
    return 0;
}

int attack_resolve(const char *spec, Preset preset, const AttackDef **def, AttackParams *p, Err *e) {
    char name[64], args[ATTACK_TEXT_LEN] = "";
    const char *paren = strchr(spec, '(');
    size_t nlen = paren ? (size_t)(paren - spec) : strlen(spec);
    if (trim_copy(name, sizeof(name), spec, nlen) || !name[0])
        return err_set(e, "'%s' is not an attack name", spec);
    if (paren) {
        const char *close = strrchr(spec, ')');
        if (!close || close < paren) return err_set(e, "%s: '(' without ')'", spec);
        for (const char *c = close + 1; *c; c++)
            if (!isspace((unsigned char)*c)) return err_set(e, "%s: text after ')'", spec);
        if (trim_copy(args, sizeof(args), paren + 1, (size_t)(close - paren - 1)))
            return err_set(e, "%s: parameters too long", spec);
    }
    // BEARD's training-attack names (Code/eva_utils.py): PGD_e<N>, PGD_s<N>
    double eps = NAN, steps = NAN;
    const char *base = name;
    if (!strncasecmp(name, "PGD_e", 5) && isdigit((unsigned char)name[5])) {
        char *end;
        long v = strtol(name + 5, &end, 10);
        if (*end || v > 100000) return err_set(e, "unknown attack '%s' (PGD_e<N> is PGD with eps N/255)", name);
        eps = v == 510 ? 0.15 : v / 255.0; // BEARD spells eps 0.15 "e510"
        base = "PGD";
    } else if (!strncasecmp(name, "PGD_s", 5) && isdigit((unsigned char)name[5])) {
        char *end;
        long v = strtol(name + 5, &end, 10);
        if (*end || v > 1000000) return err_set(e, "unknown attack '%s' (PGD_s<N> is PGD with N steps)", name);
        steps = (double)v;
        base = "PGD";
    }
    const AttackDef *d = attack_find(base);
    if (!d) {
        err_set(e, "unknown attack '%s' (see beard attack --help for the list)", name);
        return -2;
    }
    attack_params_init(p, d, preset);
    if (!isnan(eps)) attack_params_set(p, "eps", eps);
    if (!isnan(steps)) attack_params_set(p, "steps", steps);
    // k=v pairs, separated by commas
    for (char *s = args; *s;) {
        char *comma = strchr(s, ','), *eq = strchr(s, '=');
        if (comma) *comma = 0;
        if (!eq || (comma && eq > comma)) return err_set(e, "%s: '%s' is not name=value", d->name, s);
        *eq = 0;
        char k[64], v[ATTACK_TEXT_LEN];
        if (trim_copy(k, sizeof(k), s, strlen(s)) || trim_copy(v, sizeof(v), eq + 1, strlen(eq + 1)))
            return err_set(e, "%s: parameter too long", d->name);
        int rc = attack_params_set_text(p, d, k, v);
        if (rc == -1) return err_set(e, "%s has no parameter '%s'", d->name, k);
        if (rc == -2) return err_set(e, "%s: %s = '%s' is not a value (a number such as 8/255, yes/no, or a choice)", d->name, k, v);
        if (!comma) break;
        s = comma + 1;
    }
    *def = d;
    return attack_params_check(d, p, NULL, e);
}

int attack_resolve_list(const char *list, Preset preset, int max, const AttackDef **defs, AttackParams *ps, int *n,
                        Err *e) {
    *n = 0;
    const char *s = list;
    while (*s) {
        int depth = 0;
        const char *c = s;
        for (; *c && (depth > 0 || (*c != ',' && *c != '+')); c++) depth += *c == '(' ? 1 : *c == ')' ? -1 : 0;
        char item[ATTACK_TEXT_LEN];
        if (trim_copy(item, sizeof(item), s, (size_t)(c - s))) return err_set(e, "attack spec too long in '%s'", list);
        if (item[0]) {
            if (*n == max) return err_set(e, "more than %d attacks in '%s'", max, list);
            if (attack_resolve(item, preset, &defs[*n], &ps[*n], e)) return -1;
            (*n)++;
        }
        s = *c ? c + 1 : c;
    }
    return 0;
}

// the members a call uses: all of them, or n_grad from the cursor on (in member order, as
// LightEnsemble's `if i in indexes`); advances the cursor
static int ens_select(const AttackCtx *ctx, int *idx) {
    const AttackEnsemble *en = ctx->ens;
    if (en->n_grad <= 0 || en->n_grad >= en->n) {
        for (int m = 0; m < en->n; m++) idx[m] = m;
        return en->n;
    }
    int c = *en->cursor, k = 0;
    for (int m = 0; m < en->n; m++) {
        int d = ((m - c) % en->n + en->n) % en->n; // m's distance after the cursor
        if (d < en->n_grad) idx[k++] = m;
    }
    *en->cursor = (c + en->n_grad) % en->n;
    return k;
}

#define ENS_MAX 256

// mean logits (B, K) of the members idx (k), in member order as torch.mean of a stack
static int ens_logits(const AttackCtx *ctx, const int *idx, int k, const float *x, int B, float *logits, Err *e) {
    size_t n = (size_t)B * ctx->K;
    if (k == 1) return net_forward(ctx->ens->members[idx[0]], x, B, logits, e);
    float *z = xmalloc(sizeof(float) * n);
    if (!z) return err_set(e, "out of memory");
    for (int j = 0; j < k; j++) {
        if (net_forward(ctx->ens->members[idx[j]], x, B, j ? z : logits, e)) {
            xfree(z);
            return -1;
        }
        if (j)
            for (size_t i = 0; i < n; i++) logits[i] += z[i];
    }
    for (size_t i = 0; i < n; i++) logits[i] /= (float)k;
    xfree(z);
    return 0;
}

int attack_logits(const AttackCtx *ctx, const float *x, int B, float *logits, Err *e) {
    if (!ctx->ens) return net_forward(ctx->net, x, B, logits, e);
    int idx[ENS_MAX], k = ens_select(ctx, idx);
    return ens_logits(ctx, idx, k, x, B, logits, e);
}

int attack_predict(const AttackCtx *ctx, const float *x, int B, int *pred, Err *e) {
    float *logits = xmalloc(sizeof(float) * (size_t)B * ctx->K);
    if (!logits) return err_set(e, "out of memory");
    if (attack_logits(ctx, x, B, logits, e)) {
        xfree(logits);
        return -1;
    }
    for (int b = 0; b < B; b++) pred[b] = logits_argmax(logits + (size_t)b * ctx->K, ctx->K);
    xfree(logits);
    return 0;
}

// an ensemble member's backward pass: the precomputed d(loss)/d(mean logits) / k
typedef struct {
    const float *dl; // (B, K)
    int K;
    float scale;
} EnsGrad;

static double ens_grad_loss(void *c, int i, const float *logits, float *dlogits) {
    const EnsGrad *g = c;
    for (int k = 0; k < g->K; k++) dlogits[k] = g->dl[(size_t)i * g->K + k] * g->scale;
    return 0.0;
}

int attack_gradient(const AttackCtx *ctx, const float *x, int B, NetLossFn loss, void *loss_ctx, float *logits,
                    float *grad, double *loss_sum, Err *e) {
    int idx[ENS_MAX], k = 1;
    Net *single = ctx->net;
    if (ctx->ens) {
        k = ens_select(ctx, idx);
        single = ctx->ens->members[idx[0]];
    }
    if (k == 1) { // one network: the fused forward-backward pass
        NetBackward nb = {.loss = loss, .ctx = loss_ctx, .nvec = 1, .logits = logits, .dx = grad};
        if (net_forward_backward(single, x, B, &nb, e)) return -1;
        if (loss_sum) *loss_sum = nb.loss_sum;
        return 0;
    }
    // the loss of the mean logits, then each member's share of its gradient
    int K = ctx->K;
    size_t n = (size_t)B * ctx->D;
    float *z = xmalloc(sizeof(float) * (size_t)B * K), *dl = xmalloc(sizeof(float) * (size_t)B * K);
    float *g = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!z || !dl || !g) {
        err_set(e, "out of memory");
        goto done;
    }
    if (ens_logits(ctx, idx, k, x, B, z, e)) goto done;
    double ls = 0.0;
    for (int b = 0; b < B; b++) ls += loss(loss_ctx, b, z + (size_t)b * K, dl + (size_t)b * K);
    if (logits) memcpy(logits, z, sizeof(float) * (size_t)B * K);
    if (loss_sum) *loss_sum = ls;
    EnsGrad eg = {dl, K, 1.0f / (float)k};
    for (int j = 0; j < k; j++) {
        NetBackward nb = {.loss = ens_grad_loss, .ctx = &eg, .nvec = 1, .dx = j ? g : grad};
        if (net_forward_backward(ctx->ens->members[idx[j]], x, B, &nb, e)) goto done;
        if (j)
            for (size_t i = 0; i < n; i++) grad[i] += g[i];
    }
    rc = 0;
done:
    xfree(z), xfree(dl), xfree(g);
    return rc;
}

static double unit_vectors(void *c, int i, const float *logits, float *dlogits) {
    int K = *(const int *)c;
    for (int v = 0; v < K; v++)
        for (int k = 0; k < K; k++) dlogits[v * K + k] = v == k ? 1.0f : 0.0f;
    return 0.0;
}

int attack_jacobian(const AttackCtx *ctx, const float *x, int B, float *logits, float *jac, Err *e) {
    int K = ctx->K;
    if (!ctx->ens) {
        NetBackward nb = {.loss = unit_vectors, .ctx = &K, .nvec = K, .logits = logits, .dx = jac};
        return net_forward_backward(ctx->net, x, B, &nb, e);
    }
    int idx[ENS_MAX], k = ens_select(ctx, idx);
    size_t nj = (size_t)B * K * ctx->D, nz = (size_t)B * K;
    float *jm = xmalloc(sizeof(float) * nj), *zm = xmalloc(sizeof(float) * nz), *zt = NULL;
    if (!logits) logits = zt = xmalloc(sizeof(float) * nz);
    int rc = -1;
    if (!jm || !zm || !logits) {
        err_set(e, "out of memory");
        goto done;
    }
    for (int j = 0; j < k; j++) {
        NetBackward nb = {.loss = unit_vectors, .ctx = &K, .nvec = K, .logits = j ? zm : logits, .dx = j ? jm : jac};
        if (net_forward_backward(ctx->ens->members[idx[j]], x, B, &nb, e)) goto done;
        if (j) {
            for (size_t i = 0; i < nj; i++) jac[i] += jm[i];
            for (size_t i = 0; i < nz; i++) logits[i] += zm[i];
        }
    }
    for (size_t i = 0; i < nj; i++) jac[i] /= (float)k;
    for (size_t i = 0; i < nz; i++) logits[i] /= (float)k;
    rc = 0;
done:
    xfree(jm), xfree(zm), xfree(zt);
    return rc;
}

void attack_rng(const AttackCtx *ctx, int i, uint32_t stream, Rng *r) {
    uint64_t id = ctx->ids ? (uint64_t)ctx->ids[i] : (uint64_t)i;
    rng_init(r, ctx->seed, (id << 16) | stream);
}

void attack_progress(const AttackCtx *ctx, double frac) {
    if (!ctx->progress) return;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    progress_update(ctx->progress, ctx->progress_base + frac * ctx->progress_span, NULL);
}

double attack_loss_ce(void *c, int i, const float *logits, float *dlogits) {
    const AttackLossCtx *lc = c;
    double l = crossentropy_sample(dlogits, logits, lc->labels[i], lc->K);
    float s = lc->sign * lc->scale;
    for (int k = 0; k < lc->K; k++) dlogits[k] *= s;
    return lc->sign * l;
}

int attack_needs_train(const AttackDef *def, const AttackParams *p) {
    if (def->needs_train) return 1;
    for (const AttackParamDef *d = def->params; d && d->name; d++) {
        if (d->type != ATTACK_PARAM_TEXT) continue;
        const AttackDef *defs[8];
        AttackParams *ps = malloc(sizeof(AttackParams) * 8);
        int n, need = 0;
        Err e;
        if (ps && !attack_resolve_list(attack_params_get_str(p, d->name), PRESET_TORCHATTACKS, 8, defs, ps, &n, &e))
            for (int i = 0; i < n && !need; i++) need = attack_needs_train(defs[i], &ps[i]);
        free(ps);
        if (need) return 1;
    }
    return 0;
}
