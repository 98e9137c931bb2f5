/*
 * registry.c: the table of attacks. Adding an attack is one file defining an AttackDef
 * and one line here.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "attack.h"

extern const AttackDef attack_fgsm, attack_pgd;
extern const AttackDef attack_bim, attack_mifgsm, attack_tpgd, attack_pgdl2, attack_cw;
extern const AttackDef attack_deepfool, attack_fab;
extern const AttackDef attack_apgd, attack_apgdt, attack_square, attack_spsa, attack_autoattack;

static const AttackDef *const attacks[] = {
    &attack_fgsm,
    &attack_pgd,
    &attack_bim, &attack_mifgsm, &attack_tpgd, &attack_pgdl2, &attack_cw,
    &attack_deepfool, &attack_fab,
    &attack_apgd, &attack_apgdt, &attack_square, &attack_spsa, &attack_autoattack,
};

int attack_count(void) { return (int)(sizeof(attacks) / sizeof(attacks[0])); }
const AttackDef *attack_get(int i) { return i >= 0 && i < attack_count() ? attacks[i] : NULL; }

// case-insensitive, with '-' and '_' alike
static int name_eq(const char *a, const char *b, size_t nb) {
    size_t i = 0;
    for (; a[i] && i < nb; i++) {
        char ca = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);
        char cb = b[i] == '-' ? '_' : (char)tolower((unsigned char)b[i]);
        if (ca != cb) return 0;
    }
    return a[i] == 0 && i == nb;
}

const AttackDef *attack_find(const char *name) {
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attacks[i];
        if (name_eq(name, d->name, strlen(d->name))) return d;
        const char *p = d->aliases;
        while (p && *p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            if (name_eq(name, p, len)) return d;
            p = c ? c + 1 : NULL;
        }
    }
    return NULL;
}
