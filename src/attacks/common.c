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
    for (const AttackParamDef *d = def->params; d && d->name; d++) {
        assert(p->n < ATTACK_MAX_PARAMS);
        double v = d->torchattacks;
        if (preset == PRESET_BEARD && !isnan(d->beard)) v = d->beard;
        if (preset == PRESET_FRA31 && !isnan(d->fra31)) v = d->fra31;
        p->names[p->n] = d->name;
        p->values[p->n] = v;
        p->n++;
    }
}

int attack_params_set(AttackParams *p, const char *name, double value) {
    for (int i = 0; i < p->n; i++)
        if (same_name(p->names[i], name)) {
            p->values[i] = value;
            return 0;
        }
    return -1;
}

static const AttackParamDef *param_def(const AttackDef *def, const char *name) {
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

int attack_params_set_text(AttackParams *p, const AttackDef *def, const char *name, const char *text) {
    const AttackParamDef *d = param_def(def, name);
    if (!d) return -1;
    double v;
    if (d->choices && choice_index(d->choices, text) >= 0) v = choice_index(d->choices, text);
    else if (!strcasecmp(text, "true") || !strcasecmp(text, "yes")) v = 1;
    else if (!strcasecmp(text, "false") || !strcasecmp(text, "no")) v = 0;
    else if (parse_number(text, &v)) return -2;
    if (d->choices) { // a number must index one of the choices
        int count = 1;
        for (const char *c = d->choices; *c; c++) count += *c == ',';
        if (v < 0 || v >= count || v != floor(v)) return -2;
    }
    return attack_params_set(p, name, v);
}

const char *attack_param_text(const AttackParams *p, const AttackDef *def, int i, char *buf, size_t n) {
    const AttackParamDef *d = param_def(def, p->names[i]);
    if (d && d->choices) {
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

double attack_param(const AttackCtx *ctx, const char *name) {
    const AttackParams *p = ctx->params;
    for (int i = 0; i < p->n; i++)
        if (same_name(p->names[i], name)) return p->values[i];
    assert(!"attack reads a parameter it does not declare");
    return NAN;
}

int attack_param_int(const AttackCtx *ctx, const char *name) { return (int)lround(attack_param(ctx, name)); }

int attack_logits(const AttackCtx *ctx, const float *x, int B, float *logits, Err *e) {
    return net_forward(ctx->net, x, B, logits, e);
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

int attack_gradient(const AttackCtx *ctx, const float *x, int B, NetLossFn loss, void *loss_ctx, float *logits,
                    float *grad, double *loss_sum, Err *e) {
    NetBackward nb = {.loss = loss, .ctx = loss_ctx, .nvec = 1, .logits = logits, .dx = grad};
    if (net_forward_backward(ctx->net, x, B, &nb, e)) return -1;
    if (loss_sum) *loss_sum = nb.loss_sum;
    return 0;
}

static double unit_vectors(void *c, int i, const float *logits, float *dlogits) {
    int K = *(const int *)c;
    for (int v = 0; v < K; v++)
        for (int k = 0; k < K; k++) dlogits[v * K + k] = v == k ? 1.0f : 0.0f;
    return 0.0;
}

int attack_jacobian(const AttackCtx *ctx, const float *x, int B, float *logits, float *jac, Err *e) {
    int K = ctx->K;
    NetBackward nb = {.loss = unit_vectors, .ctx = &K, .nvec = K, .logits = logits, .dx = jac};
    return net_forward_backward(ctx->net, x, B, &nb, e);
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
