/*
 * idm.h: what BACON (bacon.c) takes from IDM (idm.c): BACON is IDM's loop with another
 * matching loss, so it reuses IDM's parameters, per-setting values and step, and brings
 * only its loss.
 */
#ifndef BEARD_DISTILL_IDM_H
#define BEARD_DISTILL_IDM_H

#include "distill.h"

// The matching loss of one class, as distill_mean_l2 (distill.h)
typedef double (*IdmMatchLoss)(const float *er, int nr, const float *es, int ns, size_t E, float *g, float *scratch);

extern const DistillParamDef idm_params[];
void idm_setting(DistillParams *p, const DatasetInfo *info, int ipc);
int idm_init(DistillRun *r, Err *e);
int idm_step_with(DistillRun *r, IdmMatchLoss loss, Err *e);
int idm_save(DistillRun *r, TensorDict *ck, Err *e);
int idm_load(DistillRun *r, const TensorDict *ck, Err *e);
void idm_free(DistillRun *r);

// which of IDM's per-setting tables (command.txt) to use
void idm_setting_for(DistillParams *p, const DatasetInfo *info, int ipc, int bacon);

#endif
