/*
 * fuzz_config.c: libFuzzer target for the configurations beard reads: BEARD's
 * train_config.json (src/train/train_config.c, then the recipe it makes), the grid
 * config of `beard run` (src/grid/grid.c), BEARD's evaluate_config.json
 * (src/evaluate/eval_config.c, also fuzzed with the logs in fuzz_metrics), the settings
 * file of `beard distill` (src/distill/config.c), and the attack lists every command
 * takes ("PGD(eps=4/255, steps=20),FGSM", attacks/attack.h). Every one must give a result
 * or an error, and whatever names it accepts for file names must pass the file-name rule.
 * Seeds: tests/fuzz/corpus_config/ (tests/scripts/gen_fuzz_seeds.py).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/attacks/attack.h"
#include "../../src/distill/distill.h"
#include "../../src/evaluate/eval_config.h"
#include "../../src/io/file.h"
#include "../../src/grid/grid.h"
#include "../../src/train/train.h"
#include "../../src/train/train_config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Err e;
    // the text as an attack list
    if (size < 2048) {
        char text[2048];
        memcpy(text, data, size);
        text[size] = 0;
        static const AttackDef *defs[32];
        static AttackParams ps[32];
        int n = 0;
        if (attack_resolve_list(text, PRESET_BEARD, 32, defs, ps, &n, &e) == 0 && (n < 0 || n > 32)) abort();
    }
    // as the settings file of beard distill (read from a path)
    static DistillSettings ds;
    distill_settings_default(&ds);
    distill_settings_load_json(&ds, fuzz_put("distill.json", data, size), &e);
    fuzz_clean();
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return 0;
    static TrainSettings s;
    train_settings_default(&s);
    if (train_settings_apply_json(&s, root, &e) == 0) {
        static TrainConfig cfg;
        if (train_settings_config(&s, 0, &cfg, &e) == 0) {}
    }
    static EvalConfig c;
    if (eval_config_from_json(&c, root, &e) == 0) {
        if (file_name_check(c.method, NULL, NULL) || file_name_check(c.model, NULL, NULL) ||
            file_name_check(c.dataset, NULL, NULL) || file_name_check(c.ipc, NULL, NULL))
            abort(); // a name that becomes a file name got through
        char path[1200];
        // save_path is the user's own folder (it may well be ../results); what beard
        // appends to it from the metadata must be one plain name
        if (eval_config_output_path(&c, "results.json", path, sizeof(path), &e) == 0) {
            const char *dir = c.save_path[0] ? c.save_path : ".";
            size_t nd = strlen(dir);
            int slash = dir[nd - 1] != '/'; // join adds one
            if (strncmp(path, dir, nd) || (slash && path[nd] != '/')) abort();
            const char *name = path + nd + slash;
            if (strchr(name, '/') || file_name_check(name, NULL, NULL)) abort();
        }
        cJSON_Delete(eval_config_to_json(&c));
    }
    static Grid g;
    GridIssues iss;
    grid_issues_init(&iss);
    memset(&g, 0, sizeof(g));
    grid_from_json(&g, root, "fuzz.json", &iss);
    grid_issues_free(&iss);
    cJSON_Delete(root);
    return 0;
}
