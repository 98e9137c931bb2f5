/*
 * test_hostile.c: one regression test per class of bug that an outside review found by
 * feeding beard hostile input (issue 16). The inputs are crafted by
 * tests/scripts/gen_hostile.py (tests/fixtures/hostile/) or byte by byte here when they
 * would be too large to commit. Each test states the class; each must fail the suite if
 * the class comes back:
 *   - a DAG-shaped state_dict (2^60 paths in 1.6 KB) answers within a second;
 *   - a storage behind 2000 names (16 MB, 23 KB on disk) costs its size once;
 *   - a state_dict of 200000 names loads in linear time;
 *   - a load whose work or memory outgrows its input stops with a budget error;
 *   - a zip record with a bad CRC-32, a truncated zip and an empty file are refused;
 *   - FIFOs and devices are refused without blocking, by the library and by every
 *     command that reads a file;
 *   - NaN/Inf and integer weights are refused, naming the tensor;
 *   - names from data never leave the output folder, every subcommand takes --threads,
 *     old option spellings are aliases, unwritable outputs fail before any work.
 * (Also: test_file.c for the file-name rule and atomic writes, test_metrics.c for the
 * metrics' strictness, test_evaluate.c for output naming and --force, test_pool.c for
 * image folders and image sizes, test_kill.c for kill -9.)
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../src/io/file.h"
#include "../src/io/pickle.h"
#include "../src/io/torch_pt.h"
#include "../src/models/checkpoint.h"
#include "../src/models/convnet.h"
#include "harness.h"

#define HOSTILE "tests/fixtures/hostile/"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Bytes;

static void put(Bytes *b, const void *s, size_t k) {
    if (b->n + k > b->cap) {
        b->cap = (b->n + k) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
}
static void put_op(Bytes *b, uint8_t op) { put(b, &op, 1); }
static void put_u32(Bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_unicode(Bytes *b, const char *s) {
    put_op(b, 'X');
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

// a 4-element float32 numpy array, numpy.core.numeric._frombuffer(bytes, dtype('f4'), (4,), 'C')
static void put_array(Bytes *b) {
    put(b, "cnumpy.core.numeric\n_frombuffer\n(", 33);
    put_op(b, 'C'), put_op(b, 16);
    float v[4] = {1, 2, 3, 4};
    put(b, v, 16);
    put(b, "cnumpy\ndtype\n(", 14);
    put_unicode(b, "f4");
    put(b, "tR(K\x04t", 6);
    put_unicode(b, "C");
    put(b, "tR", 2);
}

// CPU seconds of the calling thread: the limits below are about work, and the machine may
// be shared (wall time would measure the neighbours); the loaders are single-threaded, and
// the process clock also counts OpenMP/OpenBLAS workers that spin after an earlier test
// (CI once read 2.42 s for a 0.22 s load while another job shared the two cores)
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
static double elapsed(double t0) { return cpu_now() - t0; }

// class: flattening a DAG visits its shared subtrees exponentially often
static void test_dag(void) {
    const char *files[] = {HOSTILE "dag.pt", HOSTILE "dag.pkl"};
    for (int i = 0; i < 2; i++) {
        TensorDict sd;
        tensordict_init(&sd);
        Err e;
        double t0 = cpu_now();
        int rc = torch_load_state_dict(files[i], &sd, &e);
        double secs = elapsed(t0);
        CHECK(rc != 0 && strstr(e.msg, "second time"), "%s: %s", files[i], rc ? e.msg : "loaded");
        CHECK(secs < 1.0, "%s: %.2f s to answer (must be under a second)", files[i], secs);
        tensordict_free(&sd);
        // printing it shows each shared subtree once
        PickleValue *v;
        if (torch_load(files[i], &v, &e)) {
            CHECK(0, "%s: %s", files[i], e.msg);
            continue;
        }
        FILE *sink = tmpfile();
        t0 = cpu_now();
        pickle_print(sink, v, 20);
        long bytes = ftell(sink);
        fclose(sink);
        CHECK(elapsed(t0) < 1.0 && bytes < 20000, "%s: printing took %.2f s and %ld bytes", files[i], elapsed(t0), bytes);
        pickle_free(v);
    }
}

// class: a storage referenced N times was copied N times, outside the memory budget
static void test_shared_storage(void) {
    const char *f = HOSTILE "shared_storage.pt";
    PickleValue *v;
    Err e;
    if (torch_load(f, &v, &e)) {
        CHECK(0, "%s: %s", f, e.msg);
        return;
    }
    size_t used = pickle_doc_used(v->doc), storage = (size_t)16 << 20;
    CHECK(used < storage + (1 << 20), "%s: the load holds %zu bytes for one %zu-byte storage", f, used, storage);
    TensorDict sd;
    tensordict_init(&sd);
    CHECK(torch_state_dict_from(v, &sd, &e) == 0, "%s: %s", f, e.msg);
    CHECK(sd.n == 2000, "%s: %d entries, want 2000", f, sd.n);
    int same = sd.n == 2000;
    for (int i = 1; same && i < sd.n; i++) same = sd.items[i].t.data == sd.items[0].t.data;
    CHECK(same, "%s: the 2000 names do not share one buffer", f);
    used = pickle_doc_used(v->doc);
    CHECK(used < storage + (2 << 20), "%s: %zu bytes after flattening", f, used);
    // the weight check reads each shared buffer once (found by fuzz_pickle: 2000 x 16 MB)
    double t0 = cpu_now();
    CHECK(checkpoint_check_weights(&sd, &e) == 0, "%s: weights: %s", f, e.msg);
    CHECK(cpu_now() - t0 < 1.0, "%s: checking 2000 names of one storage took %.2f s", f, cpu_now() - t0);
    tensordict_free(&sd);
    pickle_free(v);
    // and through the checkpoint path, which keeps the file for the dict
    tensordict_init(&sd);
    CHECK(torch_load_state_dict(f, &sd, &e) == 0 && sd.n == 2000, "%s via torch_load_state_dict: %s", f, e.msg);
    const Tensor *t = tensordict_get(&sd, "t1999");
    CHECK(t && t->numel == (4u << 20) && ((const float *)t->data)[12345] == 0, "t1999 not readable");
    tensordict_free(&sd);
}

// class: each state_dict insertion scanned the dict (quadratic in the names)
static void test_many_names(void) {
    enum { N = 200000 };
    Bytes b = {0};
    put(&b, "\x80\x02}(", 4);
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "layer%d.weight", i);
        put_unicode(&b, key);
        if (i == 0) put_array(&b), put(&b, "q\x00", 2);
        else put(&b, "h\x00", 2);
        if (i % 1000 == 999) put(&b, "u(", 2);
    }
    put(&b, "u.", 2);
    PickleValue *v;
    Err e;
    double t0 = cpu_now();
    int rc = pickle_loads(b.p, b.n, NULL, &v, &e);
    CHECK(rc == 0, "many names: %s", e.msg);
    if (rc == 0) {
        TensorDict sd;
        tensordict_init(&sd);
        CHECK(torch_state_dict_from(v, &sd, &e) == 0 && sd.n == N, "many names: %d entries: %s", sd.n, e.msg);
        const Tensor *t = tensordict_get(&sd, "layer123456.weight");
        CHECK(t && t->numel == 4 && ((const float *)t->data)[3] == 4, "many names: lookup");
        tensordict_free(&sd);
        pickle_free(v);
    }
    double secs = elapsed(t0);
    // linear: well under a second here (the quadratic insertion took minutes); the
    // sanitizer build is ~10x slower
    double limit = getenv("BEARD_SANITIZED") ? 10.0 : 2.0;
    CHECK(secs < limit, "many names: %.2f s for %d names", secs, N);
    free(b.p);
}

// class: work and memory that outgrow the input
static void test_budgets(void) {
    Err e;
    // 1000 items copied into a new set 100000 times: memory grows with the calls
    Bytes b = {0};
    put(&b, "\x80\x02]q\x00(", 6);
    for (int i = 0; i < 1000; i++) put_op(&b, 'K'), put_op(&b, (uint8_t)i);
    put(&b, "ec__builtin__\nset\nq\x01", 20);
    for (int i = 0; i < 100000; i++) put(&b, "h\x01(h\x00tR0", 8);
    put(&b, "N.", 2);
    PickleValue *v;
    double t0 = cpu_now();
    int rc = pickle_loads(b.p, b.n, NULL, &v, &e);
    CHECK(rc != 0 && (strstr(e.msg, "more memory") || strstr(e.msg, "more work")), "amplification: %s",
          rc ? e.msg : "loaded");
    if (rc == 0) pickle_free(v);
    // the budget stops it early: a fraction of a second here; the sanitizer build is ~10x
    // slower (it took 2.04 s in one CI run), and the unbudgeted copy runs for minutes
    double limit = getenv("BEARD_SANITIZED") ? 10.0 : 2.0;
    CHECK(elapsed(t0) < limit, "amplification: %.2f s", elapsed(t0));
    free(b.p);
    // the work budget itself: a document allowed 1000 steps stops a 4000-opcode pickle
    // that allocates nothing (MARK, POP_MARK)
    b = (Bytes){0};
    put(&b, "\x80\x02", 2);
    for (int i = 0; i < 2000; i++) put(&b, "(1", 2);
    put(&b, "N.", 2);
    PickleDoc *d = pickle_doc_new(4000);
    rc = pickle_loads_doc(d, b.p, b.n, NULL, NULL, &v, &e);
    CHECK(rc != 0 && strstr(e.msg, "more work"), "work budget: %s", rc ? e.msg : "loaded");
    pickle_doc_free(d);
    free(b.p);
}

// class: corrupt containers accepted with silently wrong data
static void test_corrupt(void) {
    Err e;
    TensorDict sd;
    tensordict_init(&sd);
    CHECK(torch_load_state_dict(HOSTILE "bad_crc.pt", &sd, &e) != 0 && strstr(e.msg, "CRC"), "bad CRC: %s", e.msg);
    tensordict_free(&sd);
    tensordict_init(&sd);
    CHECK(torch_load_state_dict(HOSTILE "truncated.pt", &sd, &e) != 0, "truncated zip loaded");
    tensordict_free(&sd);
    const char *empty = test_tmp("empty.pt");
    file_write_all(empty, "", 0, &e);
    PickleValue *v;
    CHECK(torch_load(empty, &v, &e) != 0 && strstr(e.msg, "empty") && !strstr(e.msg, "STOP"), "empty file: %s", e.msg);
    CHECK(pickle_load_file(empty, &v, &e) != 0 && strstr(e.msg, "empty"), "empty pickle: %s", e.msg);
    unlink(empty);
}

// class: FIFOs and devices block the readers
static void test_fifo(void) {
    const char *fifo = test_tmp("hostile.fifo");
    unlink(fifo);
    if (mkfifo(fifo, 0600)) {
        CHECK(0, "mkfifo: %s", strerror(errno));
        return;
    }
    alarm(20); // a regression hangs; the alarm turns it into a failure
    Err e;
    PickleValue *v;
    TensorDict sd;
    tensordict_init(&sd);
    CHECK(torch_load(fifo, &v, &e) != 0 && strstr(e.msg, "FIFO"), "torch_load on a FIFO: %s", e.msg);
    CHECK(torch_load_state_dict(fifo, &sd, &e) != 0 && strstr(e.msg, "FIFO"), "state_dict from a FIFO: %s", e.msg);
    CHECK(pickle_load_file(fifo, &v, &e) != 0 && strstr(e.msg, "FIFO"), "pickle from a FIFO: %s", e.msg);
    CHECK(torch_load("/dev/zero", &v, &e) != 0 && strstr(e.msg, "device"), "torch_load on /dev/zero: %s", e.msg);
    tensordict_free(&sd);
    alarm(0);
    unlink(fifo);
}

// class: NaN/Inf weights evaluated as "robust" without a word; int64 weights loaded
static void test_weights(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNet", 3, 10, 32, 32, &e)) {
        CHECK(0, "ConvNet: %s", e.msg);
        return;
    }
    const char *path = test_tmp("weights.pth");
    for (int variant = 0; variant < 4; variant++) {
        TensorDict sd;
        tensordict_init(&sd);
        CHECK(net_state_dict(&net, &sd, &e) == 0, "state_dict: %s", e.msg);
        Tensor *w = &sd.items[0].t; // features.0.weight
        const char *want = NULL;
        if (variant == 1) ((float *)w->data)[7] = NAN, want = "1 NaN";
        if (variant == 2) ((float *)w->data)[7] = -INFINITY, want = "1 infinite";
        if (variant == 3) { // the same weights cast to int64
            Tensor it;
            tensor_init(&it, DTYPE_I64, w->ndim, w->shape, &e);
            tensor_free(w);
            *w = it;
            want = "int64";
        }
        CHECK(torch_save_state_dict(path, &sd, &e) == 0, "save: %s", e.msg);
        tensordict_free(&sd);
        Net back;
        int rc = checkpoint_load(&back, path, "ConvNet", 3, 10, 32, 32, &e);
        if (!want) CHECK(rc == 0, "finite float weights load: %s", e.msg);
        else CHECK(rc != 0 && strstr(e.msg, want) && strstr(e.msg, "features.0.weight"), "variant %d: %s", variant, rc ? e.msg : "loaded");
        if (rc == 0) net_free(&back);
        // the path appears once in the message
        if (rc) {
            const char *first = strstr(e.msg, path);
            CHECK(first && !strstr(first + 1, path), "the path is printed once: %s", e.msg);
        }
    }
    unlink(path);
    net_free(&net);
}

// class: FIFOs blocked the commands that read them (inspect, eval, evaluate, metrics)
static void test_cli_fifo(void) {
    if (!beard_bin()) return test_skip("CLI FIFO tests: no beard binary");
    const char *fifo = test_tmp("cli.fifo");
    unlink(fifo);
    if (mkfifo(fifo, 0600)) return;
    static char out[1 << 14];
    const char *cmds[] = {"inspect %s", "eval --model %s --dataset cifar10 --data tests/fixtures/io/cifar10_py",
                          "evaluate --config %s", "metrics %s", "train --config %s --dataset cifar10"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char args[600];
        snprintf(args, sizeof(args), cmds[i], fifo);
        int rc = run_cli(out, sizeof(out), "%s", args); // a regression hangs here
        CHECK(rc == 1 && strstr(out, "FIFO"), "beard %s: exit 1 naming the FIFO (%d): %s", args, rc, out);
    }
    unlink(fifo);
}

// class: names from data chose where files went; the interface named one thing many ways
static void test_cli_names(void) {
    if (!beard_bin()) return test_skip("CLI name tests: no beard binary");
    static char out[1 << 15];
    const char *dir = test_tmp("names");
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/out'", dir, dir);
    CHECK(system(cmd) == 0, "mkdir");
    // beard train --method ../../escape: refused before anything is written
    const char *bad[] = {"../escaped", "/tmp/escaped", "a|b", "a b"};
    for (int i = 0; i < 4; i++) {
        int rc = run_cli(out, sizeof(out), "train --data-file x.pt --dataset cifar10 --method '%s' --out %s/out", bad[i], dir);
        CHECK(rc == 2 && strstr(out, "--method"), "train --method '%s': a usage error (%d): %s", bad[i], rc, out);
    }
    snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s' -name '*escaped*')\" && test ! -e /tmp/escaped", dir);
    CHECK(system(cmd) == 0, "no file outside the output folder");
    // every subcommand (as `beard --help` lists them, new ones included) takes --threads
    // and documents it
    run_cli(out, sizeof(out), "--help");
    char subs[32][32];
    int n_subs = 0;
    const char *p = strstr(out, "commands:");
    // the block ends at the first blank line (the architectures' list follows it)
    for (p = p ? strchr(p, '\n') : NULL; p && *p && p[1] != '\n' && n_subs < 32; p = strchr(p + 1, '\n')) {
        if (sscanf(p + 1, " %31s", subs[n_subs]) == 1 && p[1] == ' ') n_subs++;
    }
    CHECK(n_subs >= 12, "beard --help lists %d subcommands", n_subs);
    for (int i = 0; i < n_subs; i++) {
        int rc = run_cli(out, sizeof(out), "%s --help", subs[i]);
        CHECK(rc == 0 && strstr(out, "--threads"), "beard %s --help: exit 0 and --threads documented (%d)", subs[i], rc);
        rc = run_cli(out, sizeof(out), "%s --threads 2 --frobnicate", subs[i]);
        CHECK(!strstr(out, "'--threads'"), "beard %s does not know --threads: %s", subs[i], out);
    }
    // the canonical names and their aliases
    int rc = run_cli(out, sizeof(out), "attack --model m.pth --dataset cifar10 --attacks NoSuchAttack");
    CHECK(rc == 2 && strstr(out, "NoSuchAttack"), "attack --attacks (alias) reaches the name check (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "demo --attack NoSuchAttack --synthetic --out %s/out", dir);
    CHECK(rc == 2 && strstr(out, "unknown attack"), "demo: an unknown attack is an error, not skipped (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "eval --model m.pth --dataset cifar10 --n-examples -1");
    CHECK(rc == 2 && strstr(out, "--limit"), "eval --n-examples is --limit (%d): %s", rc, out);
    // an unwritable output fails before any work
    rc = run_cli(out, sizeof(out), "attack --model m.pth --dataset cifar10 --attack FGSM --json /nonexistent-dir/x.json");
    CHECK(rc == 1 && strstr(out, "--json") && strstr(out, "nonexistent-dir"), "attack --json into a missing folder (%d): %s", rc, out);
    CHECK(access("/nonexistent-dir", F_OK) != 0, "the missing folder was not created");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {}
}

int main(void) {
    test_dag();
    test_shared_storage();
    test_many_names();
    test_budgets();
    test_corrupt();
    test_fifo();
    test_weights();
    test_cli_fifo();
    test_cli_names();
    return test_done("test_hostile");
}
