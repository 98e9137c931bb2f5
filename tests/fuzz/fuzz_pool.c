/*
 * fuzz_pool.c: libFuzzer target for the distilled-set loaders (src/data/pool.c): DC/DSA/DM
 * res_*.pt, IDM/BACON .pkl pairs, tensor pairs in dicts, and MTT folders (images_best.pt,
 * labels_best.pt, lr_best.pt), and MTT's expert trajectories (replay_buffer_0.pt, read
 * for a ConvNetD1 by src/distill/mtt_buffer.c). The first byte picks the layout; for MTT
 * sets the next four bytes (two big-endian 16-bit lengths) split the input into the
 * three files. Whatever loads must hold finite images and
 * labels in range, and survive the 4-in-1 unpacking.
 * Seeds: tests/fuzz/corpus_pool/ (tests/scripts/gen_fuzz_seeds.py).
 */
#include <math.h>

#include "../../src/data/pool.h"
#include "../../src/distill/mtt_buffer.h"
#include "../../src/models/convnet.h"
#include "fuzz_common.h"

static const DatasetInfo TINY = {"TINY", 3, 4, 4, 10, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};

static void check(Pool *p) {
    size_t D = (size_t)p->c * p->h * p->w;
    for (size_t i = 0; p->x && i < (size_t)p->n * D; i++)
        if (!isfinite(p->x[i])) abort();
    for (int i = 0; i < p->n; i++)
        if (p->y[i] < 0 || p->y[i] >= p->n_classes) abort();
    Err e;
    if (p->n <= 64) pool_unpack4(p, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int kind = data[0] % 4;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    PoolOptions o = {.info = &TINY, .exp = -1, .pixels = data[0] & 0x80 ? 1 : 0};
    Pool p;
    Err e;
    const char *path = NULL;
    if (kind == 3) { // expert trajectories
        static Net net;
        static int have_net;
        if (!have_net) have_net = model_create(&net, "ConvNetD1", 3, 10, 4, 4, &e) == 0 ? 1 : -1;
        if (have_net < 0) abort();
        fuzz_put("buf/replay_buffer_0.pt", b, n);
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/buf", fuzz_dir());
        MttBuffer mb;
        if (mtt_buffer_open(&mb, dir, &net, "ConvNetD1", &TINY, 0, &e) == 0 && mtt_buffer_load(&mb, 0, &net, &e) == 0) {
            if (mb.n_experts <= 0 || mb.n_epochs <= 0 || mb.P != net.n_params) abort();
            volatile float last = mtt_buffer_snapshot(&mb, mb.n_experts - 1, mb.n_epochs - 1)[mb.P - 1];
            (void)last;
        }
        mtt_buffer_free(&mb);
        fuzz_clean();
        return 0;
    }
    if (kind == 0) path = fuzz_put("pool/res_DM_TINY_ConvNet_1ipc.pt", b, n);
    else if (kind == 1) path = fuzz_put("pool/set.pkl", b, n);
    else {
        if (n < 4) return 0;
        size_t rest = n - 4, c1 = ((size_t)b[0] << 8 | b[1]) % (rest + 1);
        size_t c2 = c1 + ((size_t)b[2] << 8 | b[3]) % (rest - c1 + 1);
        b += 4;
        fuzz_put("mtt/images_best.pt", b, c1);
        fuzz_put("mtt/labels_best.pt", b + c1, c2 - c1);
        if (data[0] & 0x40) fuzz_put("mtt/lr_best.pt", b + c2, rest - c2);
        static char dir[512];
        snprintf(dir, sizeof(dir), "%s/mtt", fuzz_dir());
        path = dir;
    }
    if (pool_load(&p, path, &o, &e) == 0) check(&p);
    pool_free(&p);
    fuzz_clean();
    return 0;
}
