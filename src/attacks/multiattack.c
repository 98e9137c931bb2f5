/*
 * multiattack.c: torchattacks 3.5.1's MultiAttack wrapper: several attacks run in turn,
 * each on the samples that every earlier one failed to fool; a sample keeps the example
 * of the first attack that misclassifies it (scored on the model against the true
 * label), and the clean input when none does. The first attack runs on every sample,
 * misclassified ones included, as torchattacks' MultiAttack does (a sample misclassified
 * from the start keeps the first attack's output). Untargeted only, as torchattacks.
 * The attacks are given by `chain`, names with optional parameters separated by '+' or
 * ',', e.g. "FGSM+PGD(steps=20)+CW"; each starts from the preset named by `chain_preset`
 * (which follows the run's preset: `--preset beard` makes it beard). torchattacks needs
 * at least two attacks and so does beard.
 * A sub-attack runs on the subset with the samples' own random streams (their ids in
 * the evaluation), so its results equal those of running it alone on those samples.
 * No deliberate differences beyond the sub-attacks' own.
 */
#include <stdlib.h>
#include <string.h>

#include "apgd.h"

#define MULTI_MAX 16

static const AttackParamDef params[] = {
    {"chain", 0, P_SAME, P_SAME, "the attacks, in order, e.g. FGSM+PGD(steps=20)", AP_TEXT("FGSM+PGD")},
    {"chain_preset", PRESET_TORCHATTACKS, PRESET_BEARD, PRESET_FRA31, "the preset the chained attacks start from (follows the run's --preset)",
     AP_CHOICE("torchattacks,beard,fra31")},
    {NULL},
};

typedef struct {
    int n;
    const AttackDef *defs[MULTI_MAX];
    AttackParams ps[MULTI_MAX];
    void *states[MULTI_MAX];
} Chain;

static int chain_resolve(const AttackParams *p, Chain *c, Err *e) {
    memset(c, 0, sizeof(*c));
    if (attack_resolve_list(attack_params_get_str(p, "chain"), (Preset)(int)attack_params_get(p, "chain_preset"), MULTI_MAX,
                            c->defs, c->ps, &c->n, e))
        return err_wrap(e, "MultiAttack chain");
    if (c->n < 2) return err_set(e, "MultiAttack: the chain needs at least two attacks (torchattacks' rule), got %d", c->n);
    for (int i = 0; i < c->n; i++)
        if (!c->defs[i]->untargeted_ok) return err_set(e, "MultiAttack: %s has no untargeted mode", c->defs[i]->name);
    return 0;
}

static int multi_check(const AttackDef *def, const AttackParams *p, const AttackShape *s, Err *e) {
    Chain *c = malloc(sizeof(Chain));
    if (!c) return err_set(e, "out of memory");
    int rc = chain_resolve(p, c, e);
    for (int i = 0; !rc && s && i < c->n; i++) rc = attack_params_check(c->defs[i], &c->ps[i], s, e);
    free(c);
    return rc;
}

static void multi_state_free(void *state) {
    Chain *c = state;
    for (int i = 0; i < c->n; i++)
        if (c->states[i] && c->defs[i]->state_free) c->defs[i]->state_free(c->states[i]);
    free(c);
}

static int multi_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K;
    Chain *c = ctx->state ? *ctx->state : NULL, *local = NULL;
    if (!c) { // the chain lives across batches (a chained LGV keeps its models)
        c = malloc(sizeof(Chain));
        if (!c) return err_set(e, "out of memory");
        if (chain_resolve(ctx->params, c, e)) {
            free(c);
            return -1;
        }
        if (ctx->state) *ctx->state = c;
        else local = c;
    }
    int *fails = malloc(sizeof(int) * B), *ys = malloc(sizeof(int) * B), *ids = malloc(sizeof(int) * B);
    int *pred = malloc(sizeof(int) * B);
    float *xs = xmalloc(sizeof(float) * D * B), *adv = xmalloc(sizeof(float) * D * B);
    int rc = -1;
    if (!fails || !ys || !ids || !pred || !xs || !adv) {
        err_set(e, "out of memory");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * D * B);
    int m = B;
    for (int b = 0; b < B; b++) fails[b] = b;
    for (int a = 0; a < c->n && m > 0; a++) {
        for (int j = 0; j < m; j++) {
            memcpy(xs + j * D, x + (size_t)fails[j] * D, sizeof(float) * D);
            ys[j] = y[fails[j]];
        }
        AttackCtx sub = attack_subctx(ctx, fails, m, ids, (double)a / c->n, (double)(a + 1) / c->n);
        sub.params = &c->ps[a];
        sub.targeted = 0;
        sub.state = local ? NULL : &c->states[a];
        if (c->defs[a]->run(&sub, xs, ys, NULL, m, adv, e)) {
            err_wrap(e, "MultiAttack: %s", c->defs[a]->name);
            goto done;
        }
        if (attack_predict(ctx, adv, m, pred, e)) goto done;
        int left = 0;
        for (int j = 0; j < m; j++) {
            if (pred[j] != ys[j]) memcpy(x_adv + (size_t)fails[j] * D, adv + j * D, sizeof(float) * D);
            else fails[left++] = fails[j];
        }
        m = left;
    }
    (void)K;
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    if (local) multi_state_free(local);
    free(fails), free(ys), free(ids), free(pred);
    xfree(xs), xfree(adv);
    return rc;
}

const AttackDef attack_multiattack = {
    .name = "MultiAttack",
    .aliases = "multiattack,multi_attack,multi",
    .summary = "attacks in turn, each on the samples the earlier ones did not fool (torchattacks' MultiAttack)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = multi_run,
    .check = multi_check,
    .state_free = multi_state_free,
};
