/*
 * dist.c: see dist.h. Without BEARD_MPI every function says that there is one process.
 */
#include "dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BEARD_MPI
#include <mpi.h>
#endif

static int active, rank, size = 1;

static int env_set(const char *name) {
    const char *v = getenv(name);
    return v && *v;
}

int dist_launched(void) {
    return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_SIZE") || env_set("PMI_RANK");
}

int dist_available(void) {
#ifdef BEARD_MPI
    return 1;
#else
    return 0;
#endif
}

int dist_active(void) { return active; }
int dist_rank(void) { return rank; }
int dist_size(void) { return size; }

int dist_local_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!v) v = getenv("SLURM_NTASKS_PER_NODE");
    int n = v ? atoi(v) : 1;
    return n > 0 ? n : 1;
}

#ifdef BEARD_MPI
static void nap(void) {
    struct timespec ts = {0, 2 * 1000 * 1000}; // 2 ms
    nanosleep(&ts, NULL);
}

int dist_init(int *argc, char ***argv, Err *e) {
    if (active || !dist_launched()) return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return err_set(e, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    active = 1;
    return 0;
}

int dist_send(int dest, int tag, const void *buf, size_t n, Err *e) {
    if (n > 0x7fffffff) return err_set(e, "MPI message of %zu bytes is too large", n);
    MPI_Request req;
    if (MPI_Isend((void *)buf, (int)n, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        return err_set(e, "MPI send to rank %d failed", dest);
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return err_set(e, "MPI send to rank %d failed", dest);
        if (done) return 0;
        nap();
    }
}

int dist_recv(int *src, int *tag, void **buf, size_t *n, double timeout_s, Err *e) {
    double t0 = time_now();
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
            return err_set(e, "MPI probe failed");
        if (flag) {
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            void *b = malloc(count > 0 ? (size_t)count : 1);
            if (!b) return err_set(e, "out of memory for an MPI message of %d bytes", count);
            if (MPI_Recv(b, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
                free(b);
                return err_set(e, "MPI receive from rank %d failed", st.MPI_SOURCE);
            }
            *src = st.MPI_SOURCE, *tag = st.MPI_TAG, *buf = b, *n = (size_t)count;
            return 1;
        }
        if (timeout_s >= 0 && time_now() - t0 > timeout_s) return 0;
        nap();
    }
}

void dist_finalize(void) {
    if (active) MPI_Finalize();
    active = 0;
}

void dist_abort(int code) {
    if (active) MPI_Abort(MPI_COMM_WORLD, code);
}
#else
int dist_init(int *argc, char ***argv, Err *e) {
    (void)argc, (void)argv;
    if (dist_launched())
        return err_set(e, "started by an MPI launcher, but this beard was built without MPI (install libopenmpi-dev, "
                          "as scripts/deps.sh does, and rebuild)");
    return 0;
}
int dist_send(int dest, int tag, const void *buf, size_t n, Err *e) {
    (void)dest, (void)tag, (void)buf, (void)n;
    return err_set(e, "this beard was built without MPI");
}
int dist_recv(int *src, int *tag, void **buf, size_t *n, double timeout_s, Err *e) {
    (void)src, (void)tag, (void)buf, (void)n, (void)timeout_s;
    return err_set(e, "this beard was built without MPI");
}
void dist_finalize(void) {}
void dist_abort(int code) { (void)code; }
#endif
