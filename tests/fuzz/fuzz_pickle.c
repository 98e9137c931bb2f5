/*
 * fuzz_pickle.c: libFuzzer target for the restricted unpickler and the torch loaders.
 * Every input goes through pickle_loads (plain pickle, no hooks) and torch_loads (zip,
 * legacy torch.save or plain pickle with torch blobs); whatever loads is printed and
 * searched for a state_dict. Nothing may crash, leak or trip UBSan.
 * Seeds: tests/fuzz/corpus_pickle/ (from tests/scripts/gen_io_fixtures.py).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../src/io/pickle.h"
#include "../../src/io/torch_pt.h"

static void exercise(PickleValue *v, FILE *sink) {
    TensorDict sd;
    Err e;
    pickle_print(sink, v, 8);
    tensordict_init(&sd);
    torch_state_dict_from(v, &sd, &e);
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
