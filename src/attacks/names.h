/*
 * names.h: attack names as every subcommand accepts and prints them.
 *
 * Accepted: a canonical name or alias of the registry (attack_find: case-insensitive,
 * '-' and '_' alike), and BEARD's parameterised spellings, which name an attack plus one
 * parameter: PGD_e<N> (PGD with eps N/255; BEARD's PGD_e510 means eps 0.15) and PGD_s<N>
 * (PGD with N steps). `beard attack`, `beard evaluate` and `beard train` resolve names
 * through attack_resolve, so one spelling works everywhere, and an unknown name is an
 * error everywhere.
 *
 * Printed: beard's own output uses the canonical name (AttackDef.name: PGDL2, DeepFool,
 * AutoAttack). Files that BEARD's tools read (evaluation logs, BEARD-named checkpoints,
 * the metrics BEARD's toolkit writes) use BEARD's spelling: what the config said, or
 * attack_beard_name (PGD_L2, Deepfool, AA) when there is no config.
 */
#ifndef BEARD_ATTACK_NAMES_H
#define BEARD_ATTACK_NAMES_H

#include "attack.h"
#include "runner.h"

// attack_resolve (attack.h) turns a name into an attack and its parameters
// 1 when name resolves (no parameters are set up)
int attack_name_known(const char *name);
// BEARD's spelling (PGD_L2, Deepfool, AA), or d->name for attacks BEARD does not run
const char *attack_beard_name(const AttackDef *d);
// the identity of an attack name for pooling results across files: the canonical name
// of the attack it resolves to plus any parameter it carries ("PGD", "PGD eps=4/255"),
// or name itself when unknown; into buf
const char *attack_name_key(const char *name, char *buf, size_t n);

#endif
