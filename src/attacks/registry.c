/*
 * registry.c: the table of attacks. Adding an attack is one file defining an AttackDef
 * attack_<name> and one line X(<name>) here.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "attack.h"

// One line per attack, in the order `beard attack --help` lists them: X(name) registers
// the AttackDef attack_<name>.
#define ATTACKS                                                                          \
    X(fgsm)                                                                              \
    X(pgd)                                                                               \
    X(bim)                                                                               \
    X(mifgsm)                                                                            \
    X(tpgd)                                                                              \
    X(pgdl2)                                                                             \
    X(cw)                                                                                \
    X(deepfool)                                                                          \
    X(fab)                                                                               \
    X(apgd)                                                                              \
    X(apgdt)                                                                             \
    X(square)                                                                            \
    X(spsa)                                                                              \
    X(autoattack)                                                                        \
    X(vanila)                                                                            \
    X(gn)                                                                                \
    X(rfgsm)                                                                             \
    X(eotpgd)                                                                            \
    X(ffgsm)                                                                             \
    X(upgd)                                                                              \
    X(nifgsm)                                                                            \
    X(sinifgsm)                                                                          \
    X(vmifgsm)                                                                           \
    X(vnifgsm)                                                                           \
    X(difgsm)                                                                            \
    X(tifgsm)                                                                            \
    X(jitter)                                                                            \
    X(pgdrs)                                                                             \
    X(pgdrsl2)                                                                           \
    X(pifgsm)                                                                            \
    X(pifgsmpp)                                                                          \
    X(jsma)                                                                              \
    X(eadl1)                                                                             \
    X(eaden)                                                                             \
    X(sparsefool)                                                                        \
    X(onepixel)                                                                          \
    X(pixle)                                                                             \
    X(multiattack)                                                                       \
    X(lgv)                                                                               \
    X(admix)                                                                             \
    X(mist)

#define X(name) extern const AttackDef attack_##name;
ATTACKS
#undef X

#define X(name) &attack_##name,
static const AttackDef *const attacks[] = {ATTACKS};
#undef X

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
