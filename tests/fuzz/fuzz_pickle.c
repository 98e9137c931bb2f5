/*
 * fuzz_pickle.c: libFuzzer target for the restricted unpickler, the torch loaders (the .pt
 * zip container, the legacy format, plain pickles with torch blobs) and the pickle ->
 * state_dict flattening. Every input goes through pickle_loads (plain pickle, no hooks)
 * and torch_loads; whatever loads is printed, flattened into a state_dict and its weights
 * checked. Nothing may crash, leak, trip UBSan, or outgrow the load's memory and work
 * budgets (run_fuzz.sh's -rss_limit_mb and -timeout catch a blow-up).
 * Seeds: tests/fuzz/corpus_pickle/ (from tests/scripts/gen_io_fixtures.py).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../src/io/pickle.h"
#include "../../src/io/torch_pt.h"
#include "../../src/models/checkpoint.h"

static void exercise(PickleValue *v, FILE *sink) {
    TensorDict sd;
    Err e;
    pickle_print(sink, v, 8);
    tensordict_init(&sd);
    // the flattening borrows v's tensors: sd is freed before v
    if (torch_state_dict_from(v, &sd, &e) == 0) checkpoint_check_weights(&sd, &e);
    tensordict_free(&sd);
    double d;
    int64_t i;
    pickle_as_double(v, &d, &e);
    pickle_as_int(v, &i, &e);
    pickle_dict_get(v, "state_dict");
    pickle_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    PickleValue *v;
    Err e;
    if (pickle_loads(data, size, NULL, &v, &e) == 0) exercise(v, sink);
    if (torch_loads(data, size, &v, &e) == 0) exercise(v, sink);
    return 0;
}
