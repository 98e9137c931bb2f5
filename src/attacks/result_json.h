/*
 * result_json.h: an AttackResult as JSON (cJSON), the shape `beard attack --json` and
 * `beard evaluate`'s results.json share:
 *   {"attack", "targeted", "semantics", "accuracy", "clean_accuracy", "asr", "seconds",
 *    "passes_per_sample", "forward_per_sample", "backward_per_sample", "params": {...},
 *    "target_hit_rate" (targeted), "mean_l2", "mean_linf", "mean_l2_pixel",
 *    "mean_linf_pixel", "per_sample": {"clean_correct", "adv_correct", "success", "pred",
 *    "target", "l2", "linf", "l2_pixel", "linf_pixel"}}
 * and a TransferResult (`beard attack --transfer-to`) as
 *   {"model", "arch", "accuracy", "clean_accuracy", "asr", "per_sample": {"clean_correct",
 *    "adv_correct", "success"}}
 * where the target's ASR and success count its own correctly classified images.
 * Accuracies and rates are percentages, as BEARD prints them.
 */
#ifndef BEARD_RESULT_JSON_H
#define BEARD_RESULT_JSON_H

#include <cjson/cJSON.h>

#include "runner.h"

cJSON *attack_result_json(const AttackResult *r, int per_sample);
// model: the target's path as given, arch: its architecture
cJSON *transfer_result_json(const char *model, const char *arch, const TransferResult *tr, int per_sample);

#endif
