/*
 * fab.h: the FAB attack's definition, for attacks that run it as a part (AutoAttack).
 *
 * Run it through attack_fab.run with an AttackParams filled by attack_params_init(&p,
 * &attack_fab, preset) and adjusted with attack_params_set(&p, "multi_targeted", 1),
 * "steps", "n_classes", "eps", ... (see the table in fab.c).
 */
#ifndef BEARD_FAB_H
#define BEARD_FAB_H

#include "attack.h"

extern const AttackDef attack_fab;

// the values of FAB's `norm` parameter
enum { FAB_LINF, FAB_L2, FAB_L1 };

// FAB's projection of the point t (D) onto the hyperplane {u : w.u = b} intersected with
// the box [0, 1], in the given norm (fab_projections.py's algorithms): t + d is the
// projection. Exposed for the tests. Returns 0, or -1 when out of memory.
int fab_project(int norm, float *d, const float *t, const float *w, float b, size_t D);

#endif
