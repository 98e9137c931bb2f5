/*
 * names.c: see names.h. BEARD's spellings are those of its evaluate_config.json
 * (test_attack: Clean, FGSM, PGD, PGD_L2, Deepfool, CW, AA, Square, SPSA) and of its
 * training code (train_attack: PGD_e<N>, PGD_s<N>).
 */
#include "names.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// BEARD's PGD_e<N> / PGD_s<N>: which parameter, and its value; 0 when name is not one
static int beard_param_name(const char *name, const char **param, double *value, int *bad) {
    *bad = 0;
    if (strncasecmp(name, "PGD_", 4) || (tolower((unsigned char)name[4]) != 'e' && tolower((unsigned char)name[4]) != 's'))
        return 0;
    const char *digits = name + 5;
    if (!isdigit((unsigned char)*digits)) return 0;
    char *end;
    long v = strtol(digits, &end, 10);
    if (*end || v <= 0 || v > 100000) {
        *bad = 1;
        return 1;
    }
    if (tolower((unsigned char)name[4]) == 'e') {
        *param = "eps";
        *value = v == 510 ? 0.15 : v / 255.0; // BEARD's code spells eps 0.15 as e510
    } else {
        *param = "steps";
        *value = (double)v;
    }
    return 1;
}

int attack_name_known(const char *name) {
    const AttackDef *d;
    static _Thread_local AttackParams p;
    Err e;
    return attack_resolve(name, PRESET_TORCHATTACKS, &d, &p, &e) != -2;
}

const char *attack_beard_name(const AttackDef *d) {
    static const struct {
        const char *canonical, *beard;
    } map[] = {{"PGDL2", "PGD_L2"}, {"DeepFool", "Deepfool"}, {"AutoAttack", "AA"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(d->name, map[i].canonical)) return map[i].beard;
    return d->name;
}

const char *attack_name_key(const char *name, char *buf, size_t n) {
    const char *param = NULL;
    double value = 0;
    int bad = 0;
    const AttackDef *d = attack_find(name);
    if (d) snprintf(buf, n, "%s", d->name);
    else if (beard_param_name(name, &param, &value, &bad) && !bad) snprintf(buf, n, "PGD %s=%.17g", param, value);
    else snprintf(buf, n, "%s", name);
    return buf;
}
