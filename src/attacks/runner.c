/*
 * runner.c: see runner.h.
 */
#include "runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *semantics_name(Semantics s) { return s == SEM_BEARD ? "beard" : "pixel"; }

int semantics_parse(const char *s, Semantics *out) {
    if (!strcasecmp(s, "pixel")) *out = SEM_PIXEL;
    else if (!strcasecmp(s, "beard")) *out = SEM_BEARD;
    else return -1;
    return 0;
}

static const char *const policy_names[] = {"next", "beard", "random", "least-likely"};
const char *target_policy_name(TargetPolicy p) { return policy_names[p]; }

int target_policy_parse(const char *s, TargetPolicy *out) {
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, policy_names[i])) return *out = (TargetPolicy)i, 0;
    if (!strcasecmp(s, "least_likely") || !strcasecmp(s, "leastlikely")) return *out = TARGET_LEAST_LIKELY, 0;
    return -1;
}

static const char *const preset_names[] = {"torchattacks", "beard", "fra31"};
const char *preset_name(Preset p) { return preset_names[p]; }

int preset_parse(const char *s, Preset *out) {
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(s, preset_names[i])) return *out = (Preset)i, 0;
    return -1;
}

void attack_prepare(Net *net, const AttackData *d, Semantics sem, float *x) {
    size_t plane = (size_t)d->H * d->W, D = plane * d->C;
    if (sem == SEM_PIXEL) {
        memcpy(x, d->x, sizeof(float) * D * d->n);
        net_set_normalize(net, 1, d->mean, d->std);
        return;
    }
    for (int i = 0; i < d->n; i++)
        for (int c = 0; c < d->C; c++) {
            const float *src = d->x + i * D + c * plane;
            float *dst = x + i * D + c * plane;
            for (size_t j = 0; j < plane; j++) dst[j] = (src[j] - d->mean[c]) / d->std[c];
        }
    net_set_normalize(net, 0, NULL, NULL);
}

int attack_clean_predict(Net *net, const AttackData *d, Semantics sem, int batch, int *pred, float *logits, Err *e) {
    size_t D = (size_t)d->C * d->H * d->W;
    int K = net->n_classes;
    float *x = xmalloc(sizeof(float) * D * d->n), *z = xmalloc(sizeof(float) * (size_t)K * batch);
    if (!x || !z) {
        xfree(x), xfree(z);
        return err_set(e, "out of memory for %d inputs", d->n);
    }
    attack_prepare(net, d, sem, x);
    for (int s = 0; s < d->n; s += batch) {
        int B = MIN(batch, d->n - s);
        if (net_forward(net, x + s * D, B, z, e)) {
            xfree(x), xfree(z);
            return -1;
        }
        for (int b = 0; b < B; b++) {
            pred[s + b] = logits_argmax(z + (size_t)b * K, K);
            if (logits) memcpy(logits + (size_t)(s + b) * K, z + (size_t)b * K, sizeof(float) * K);
        }
    }
    xfree(x), xfree(z);
    return 0;
}

void attack_targets(TargetPolicy p, const int *y, const float *clean_logits, int n, int K, uint64_t seed, int *t) {
    for (int i = 0; i < n; i++) {
        switch (p) {
        case TARGET_NEXT: t[i] = (y[i] + 1) % K; break;
        case TARGET_BEARD: t[i] = (y[i] + 1) % 10; break;
        case TARGET_RANDOM: {
            Rng r;
            rng_init(&r, seed, 0xA77AC4ull << 32 | (uint64_t)i);
            int k = (int)rng_below(&r, (uint32_t)(K - 1));
            t[i] = k >= y[i] ? k + 1 : k; // uniform over the K-1 wrong classes
            break;
        }
        case TARGET_LEAST_LIKELY: {
            // the smallest logit among the wrong classes (torchattacks: kthvalue, k = 1)
            const float *z = clean_logits + (size_t)i * K;
            int best = -1;
            for (int k = 0; k < K; k++)
                if (k != y[i] && (best < 0 || z[k] < z[best])) best = k;
            t[i] = best;
            break;
        }
        }
    }
}

void attack_result_free(AttackResult *r) {
    free(r->clean_ok), free(r->adv_ok), free(r->pred), free(r->targets);
    free(r->l2), free(r->linf), free(r->l2_pixel), free(r->linf_pixel);
    xfree(r->x_adv);
    memset(r, 0, sizeof(*r));
}

void transfer_result_free(TransferResult *tr) {
    free(tr->clean_ok), free(tr->adv_ok);
    memset(tr, 0, sizeof(*tr));
}

int attack_transfer(Net *target, const AttackData *d, Semantics sem, const float *x_adv, int batch, TransferResult *tr,
                    Err *e) {
    memset(tr, 0, sizeof(*tr));
    int n = d->n, K = target->n_classes;
    size_t D = (size_t)d->C * d->H * d->W;
    if (batch <= 0) batch = 256;
    tr->n = n;
    tr->clean_ok = calloc(n, 1);
    tr->adv_ok = calloc(n, 1);
    int *pred = calloc(n, sizeof(int));
    float *z = xmalloc(sizeof(float) * (size_t)K * batch);
    if (!tr->clean_ok || !tr->adv_ok || !pred || !z) {
        free(pred), xfree(z), transfer_result_free(tr);
        return err_set(e, "out of memory for %d samples", n);
    }
    if (attack_clean_predict(target, d, sem, batch, pred, NULL, e)) {
        free(pred), xfree(z), transfer_result_free(tr);
        return -1;
    }
    for (int i = 0; i < n; i++) tr->clean_ok[i] = pred[i] == d->y[i];
    // attack_clean_predict left the target in `sem`'s input convention
    for (int s = 0; s < n; s += batch) {
        int B = MIN(batch, n - s);
        if (net_forward(target, x_adv + s * D, B, z, e)) {
            free(pred), xfree(z), transfer_result_free(tr);
            return -1;
        }
        for (int b = 0; b < B; b++) tr->adv_ok[s + b] = logits_argmax(z + (size_t)b * K, K) == d->y[s + b];
    }
    for (int i = 0; i < n; i++) {
        tr->clean_correct += tr->clean_ok[i];
        tr->adv_correct += tr->adv_ok[i];
        tr->success += tr->clean_ok[i] && !tr->adv_ok[i];
    }
    tr->clean_accuracy = 100.0 * tr->clean_correct / n;
    tr->accuracy = 100.0 * tr->adv_correct / n;
    tr->asr = tr->clean_correct ? 100.0 * tr->success / tr->clean_correct : 0.0;
    free(pred), xfree(z);
    return 0;
}

int attack_ensemble_init(Net *net, Net *const *extra, int n_extra, Net **members, Err *e) {
    if (n_extra < 0 || n_extra + 1 > ATTACK_MAX_ENSEMBLE)
        return err_set(e, "an ensemble of at most %d surrogates", ATTACK_MAX_ENSEMBLE);
    members[0] = net;
    for (int m = 0; m < n_extra; m++) {
        const Net *o = extra[m];
        if (o->in_c != net->in_c || o->in_h != net->in_h || o->in_w != net->in_w)
            return err_set(e, "an ensemble of surrogates with different input shapes: %s takes (%d, %d, %d), %s (%d, %d, %d)",
                           net->arch, net->in_c, net->in_h, net->in_w, o->arch, o->in_c, o->in_h, o->in_w);
        if (o->n_classes != net->n_classes)
            return err_set(e, "an ensemble of surrogates with different classes: %s has %d, %s %d", net->arch,
                           net->n_classes, o->arch, o->n_classes);
        members[m + 1] = extra[m];
    }
    return 0;
}

// forward and backward passes of every member so far
static void count_passes(Net *const *members, int n, uint64_t *fwd, uint64_t *bwd) {
    *fwd = *bwd = 0;
    for (int m = 0; m < n; m++) *fwd += members[m]->n_forward, *bwd += members[m]->n_backward;
}

int attack_evaluate(Net *net, const AttackData *d, const AttackDef *def, const AttackParams *params, int targeted,
                    const RunConfig *cfg, AttackResult *res, Err *e) {
    memset(res, 0, sizeof(*res));
    if (targeted && !def->targeted_ok) return err_set(e, "%s has no targeted mode", def->name);
    if (!targeted && !def->untargeted_ok) return err_set(e, "%s has no untargeted mode", def->name);
    AttackShape shape = {d->C, d->H, d->W, net->n_classes};
    if (attack_params_check(def, params, &shape, e)) return -1;
    if (def->needs_train && (!cfg->train || cfg->train->n <= 0))
        return err_set(e, "%s trains surrogate models and needs the training split (none was loaded)", def->name);
    Net *members[ATTACK_MAX_ENSEMBLE];
    int n_members = 1 + cfg->n_ensemble;
    if (attack_ensemble_init(net, cfg->ensemble, cfg->n_ensemble, members, e)) return -1;
    AttackEnsemble ens = {.members = members, .n = n_members, .n_grad = -1};
    void *state = NULL;
    int n = d->n, K = net->n_classes, batch = cfg->batch > 0 ? cfg->batch : 256;
    size_t D = (size_t)d->C * d->H * d->W, plane = (size_t)d->H * d->W;
    res->def = def;
    res->params = *params;
    res->targeted = targeted;
    res->sem = cfg->sem;
    res->n = n;
    res->clean_ok = calloc(n, 1);
    res->adv_ok = calloc(n, 1);
    res->pred = calloc(n, sizeof(int));
    res->l2 = calloc(n, sizeof(float));
    res->linf = calloc(n, sizeof(float));
    res->l2_pixel = calloc(n, sizeof(float));
    res->linf_pixel = calloc(n, sizeof(float));
    res->targets = targeted ? calloc(n, sizeof(int)) : NULL;
    res->x_adv = cfg->keep_adv ? xmalloc(sizeof(float) * D * n) : NULL;
    float *x = xmalloc(sizeof(float) * D * n), *adv = xmalloc(sizeof(float) * D * batch);
    float *clean_logits = xmalloc(sizeof(float) * (size_t)K * n);
    int *cpred = calloc(n, sizeof(int)), *ids = calloc(batch, sizeof(int)), *apred = calloc(batch, sizeof(int));
    int rc = -1;
    if (!res->clean_ok || !res->adv_ok || !res->pred || !res->l2 || !res->linf || !res->l2_pixel ||
        !res->linf_pixel || (targeted && !res->targets) || (cfg->keep_adv && !res->x_adv) || !x || !adv || !clean_logits || !cpred || !ids || !apred) {
        err_set(e, "out of memory for %d samples", n);
        goto done;
    }
    attack_prepare(net, d, cfg->sem, x);
    for (int m = 1; m < n_members; m++) net_set_normalize(members[m], net->normalize, net->mean, net->std);
    AttackCtx base = {.net = net, .K = K, .D = D, .targeted = targeted, .params = params, .seed = cfg->seed,
                      .n_classes_cap = cfg->n_classes_cap, .ens = n_members > 1 ? &ens : NULL, .sem = cfg->sem,
                      .mean = d->mean, .std = d->std, .train = cfg->train, .state = &state};
    for (int s = 0; s < n; s += batch) { // the clean predictions, of the ensemble when there is one
        int B = MIN(batch, n - s);
        if (attack_logits(&base, x + s * D, B, clean_logits + (size_t)s * K, e)) goto done;
    }
    for (int i = 0; i < n; i++) {
        cpred[i] = logits_argmax(clean_logits + (size_t)i * K, K);
        res->clean_ok[i] = cpred[i] == d->y[i];
        res->clean_correct += res->clean_ok[i];
    }
    if (targeted) attack_targets(cfg->policy, d->y, clean_logits, n, K, cfg->seed, res->targets);

    Progress prog;
    char label[64];
    snprintf(label, sizeof(label), "%s (%s, %s)", def->name, targeted ? "targeted" : "untargeted",
             semantics_name(cfg->sem));
    progress_start(&prog, label, 1.0);
    uint64_t fwd = 0, bwd = 0; // passes the attack itself spends (scoring excluded)
    double t0 = time_now();
    for (int s = 0; s < n; s += batch) {
        int B = MIN(batch, n - s);
        for (int b = 0; b < B; b++) ids[b] = s + b;
        AttackCtx ctx = base;
        ctx.ids = ids, ctx.progress = cfg->progress ? &prog : NULL, ctx.progress_base = (double)s / n;
        ctx.progress_span = (double)B / n;
        uint64_t f0, b0, f1, b1;
        count_passes(members, n_members, &f0, &b0);
        if (def->run(&ctx, x + s * D, d->y + s, targeted ? res->targets + s : NULL, B, adv, e)) {
            err_wrap(e, "%s", def->name);
            progress_end(&prog);
            goto done;
        }
        count_passes(members, n_members, &f1, &b1);
        fwd += f1 - f0, bwd += b1 - b0;
        if (attack_predict(&ctx, adv, B, apred, e)) goto done;
        if (res->x_adv) memcpy(res->x_adv + s * D, adv, sizeof(float) * D * B);
        for (int b = 0; b < B; b++) {
            int i = s + b;
            res->pred[i] = apred[b];
            res->adv_ok[i] = apred[b] == d->y[i];
            const float *xa = adv + b * D, *x0 = x + i * D;
            double l2 = 0, l2p = 0, li = 0, lip = 0;
            for (int c = 0; c < d->C; c++) {
                double sc = cfg->sem == SEM_BEARD ? d->std[c] : 1.0; // attack units -> pixels
                for (size_t j = c * plane; j < (c + 1) * plane; j++) {
                    double dv = (double)xa[j] - x0[j];
                    l2 += dv * dv;
                    l2p += dv * dv * sc * sc;
                    if (fabs(dv) > li) li = fabs(dv);
                    if (fabs(dv) * sc > lip) lip = fabs(dv) * sc;
                }
            }
            res->l2[i] = (float)sqrt(l2), res->linf[i] = (float)li;
            res->l2_pixel[i] = (float)sqrt(l2p), res->linf_pixel[i] = (float)lip;
        }
        if (cfg->progress) progress_update(&prog, (double)(s + B) / n, NULL);
    }
    res->seconds = time_now() - t0;
    progress_end(&prog);
    res->forward_per_sample = (double)fwd / n;
    res->backward_per_sample = (double)bwd / n;
    for (int i = 0; i < n; i++) {
        res->adv_correct += res->adv_ok[i];
        res->success += res->clean_ok[i] && !res->adv_ok[i];
        if (targeted) res->target_hits += res->pred[i] == res->targets[i];
    }
    res->clean_accuracy = 100.0 * res->clean_correct / n;
    res->accuracy = 100.0 * res->adv_correct / n;
    res->asr = res->clean_correct ? 100.0 * res->success / res->clean_correct : 0.0;
    rc = 0;
done:
    if (state && def->state_free) def->state_free(state);
    xfree(x), xfree(adv), xfree(clean_logits);
    free(cpred), free(ids), free(apred);
    if (rc) attack_result_free(res);
    return rc;
}
