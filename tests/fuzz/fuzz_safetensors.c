/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader (header length, JSON,
 * offsets). Whatever loads is written back out and read again, which must succeed.
 * Seeds: tests/fuzz/corpus_safetensors/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TensorDict sd;
    Err e;
    tensordict_init(&sd);
    if (safetensors_loads(data, size, &sd, &e) == 0 && sd.n > 0) {
        char path[64];
        snprintf(path, sizeof(path), "/tmp/fuzz-safetensors-%d.st", (int)getpid());
        TensorDict back;
        tensordict_init(&back);
        if (safetensors_save(path, &sd, &e) == 0 && safetensors_load(path, &back, &e) != 0) abort();
        if (back.n != sd.n) abort();
        tensordict_free(&back);
        remove(path);
    }
    tensordict_free(&sd);
    return 0;
}
