/*
 * dist.h: the little of MPI that `beard run` needs, behind one interface, so that the
 * rest of beard never includes mpi.h and the plain binary runs without mpirun.
 *
 * MPI is OpenMPI from Debian (libopenmpi-dev), compiled in when the build finds it
 * (BEARD_MPI, see the Makefile). MPI_Init is called only when the environment says that
 * an MPI launcher started this process (mpirun/mpiexec set OMPI_COMM_WORLD_SIZE; PMIx and
 * PMI launchers such as Slurm's srun set PMIX_RANK or PMI_SIZE); a plain `beard` never
 * initialises MPI. Waiting for a message polls with short sleeps instead of OpenMPI's
 * busy wait, so an idle scheduler (rank 0) does not take a core from the workers.
 */
#ifndef BEARD_DIST_H
#define BEARD_DIST_H

#include <stddef.h>

#include "../core/common.h"

// 1 when an MPI launcher started this process (whether or not this build has MPI)
int dist_launched(void);
// 1 when this build has MPI
int dist_available(void);
// MPI_Init when launched by MPI (no-op otherwise); -1 with e when launched but this
// build has no MPI or MPI_Init fails
int dist_init(int *argc, char ***argv, Err *e);
int dist_active(void); // MPI is initialised
int dist_rank(void);   // 0 without MPI
int dist_size(void);   // 1 without MPI
// processes of this job on this machine (for the default thread count)
int dist_local_size(void);

// sends n bytes to rank dest with a tag (blocking until the buffer can be reused)
int dist_send(int dest, int tag, const void *buf, size_t n, Err *e);
// waits for the next message from any rank (src, tag and a malloc'ed buffer of *n bytes
// out; free it); timeout_s < 0 waits forever; returns 1 on a message, 0 on timeout
int dist_recv(int *src, int *tag, void **buf, size_t *n, double timeout_s, Err *e);
void dist_finalize(void);
// ends every rank of the job (after a fatal error on one of them)
void dist_abort(int code);

#endif
