/*
 * parallel.c: see parallel.h.
 */
#include "parallel.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"

static int g_threads = 1;

// libgomp's idle threads spin GOMP_SPINCOUNT times (a `pause` each, about 140 cycles on
// this Xeon) before they sleep; its default, 300,000, is some 20 ms here, so that between
// two parallel regions a thread never sleeps, and on a machine that other jobs share a
// thread waiting at a barrier for one the scheduler has put aside burns the core that one
// could run on (a perf profile of AutoAttack's Square on 2 cores at a load of 6: 65% of
// beard's samples in libgomp's spin loops). 10,000 (under a millisecond) still covers
// the kernels' barriers, microseconds apart.
#define BEARD_SPINCOUNT "10000"

static int core_is(const char *have, const char *const *list) {
    for (; *list; list++)
        if (strcasecmp(have, *list) == 0) return 1;
    return 0;
}

void parallel_init(int argc, char **argv) {
    (void)argc;
    if (!getenv("BEARD_NO_REEXEC")) {
        const char *want = NULL;
        if (!getenv("OPENBLAS_CORETYPE")) {
            static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
            static const char *const avx2[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Haswell",
                                               "Zen",      "Skylake",    NULL};
            const char *have = openblas_get_corename();
            __builtin_cpu_init();
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
                if (!core_is(have, avx512)) want = "SkylakeX";
            } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
                if (!core_is(have, avx2)) want = "Haswell";
            }
        }
        int spin = !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
        if (want || spin) {
            if (want) setenv("OPENBLAS_CORETYPE", want, 1);
            if (spin) setenv("GOMP_SPINCOUNT", BEARD_SPINCOUNT, 1);
            setenv("BEARD_NO_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
            // exec failed: carry on with the kernels and the waits we have
        }
    }
    parallel_set_threads(0);
}

void parallel_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    if (n < 1) n = 1;
    g_threads = n;
    omp_set_num_threads(n);
    omp_set_max_active_levels(1);
    openblas_set_num_threads(1);
}

int parallel_threads(void) { return g_threads; }

const char *parallel_blas_core(void) { return openblas_get_corename(); }

void parallel_blas_threads(int n) { openblas_set_num_threads(n > 0 ? n : g_threads); }

static _Thread_local float *tl_buf[SCRATCH_SLOTS];
static _Thread_local size_t tl_cap[SCRATCH_SLOTS];

// A thread's scratch is freed when the thread exits: libgomp ends the pool threads a
// smaller team leaves over (a kernel's own parallel region after a wider one, or a
// change of --threads), and their thread-local buffers would otherwise be lost.
static pthread_key_t g_scratch_key;
static pthread_once_t g_scratch_once = PTHREAD_ONCE_INIT;

static void scratch_thread_exit(void *unused) {
    (void)unused;
    for (int s = 0; s < SCRATCH_SLOTS; s++) {
        xfree(tl_buf[s]);
        tl_buf[s] = NULL;
        tl_cap[s] = 0;
    }
}

static void scratch_key_make(void) { (void)pthread_key_create(&g_scratch_key, scratch_thread_exit); }

float *scratch_f32(int slot, size_t n) {
    if (n > tl_cap[slot]) {
        pthread_once(&g_scratch_once, scratch_key_make);
        (void)pthread_setspecific(g_scratch_key, (void *)1); // non-NULL: the destructor runs
        xfree(tl_buf[slot]);
        size_t cap = n + n / 4 + 1024;
        tl_buf[slot] = xmalloc(cap * sizeof(float));
        if (!tl_buf[slot]) {
            // kernels have no error path; scratch is small (one sample's im2col), so
            // running out here means the machine is out of memory altogether
            fprintf(stderr, "beard: out of memory (scratch of %zu floats)\n", cap);
            abort();
        }
        tl_cap[slot] = cap;
    }
    return tl_buf[slot];
}
