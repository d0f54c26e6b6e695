/* dist.h -- data-parallel training across processes (MPI), or a single process.
 *
 * Under `mpirun -np N bin/nb-train ...` every rank holds the whole model and the whole
 * (read-only) history; each global batch of --batch samples, taken from the same shuffled
 * order on every rank, is split into N contiguous slices, rank r taking positions
 * [r*bn/N, (r+1)*bn/N) (tr_dist_slice): which users a rank trains on is a pure function
 * of (seed, epoch, batch, rank, N). Each rank runs forward/backward on its slice, scales
 * its gradient by its share of the batch, and one MPI_Allreduce (MPI_SUM, in place) over
 * the model's single gradient allocation gives every rank the gradient of the global
 * batch, so every rank takes the same Adam step and the parameters stay identical
 * (checked by CRC at every epoch end). Evaluation splits the samples the same way and
 * sums the metric accumulators. Rank 0 alone writes the checkpoint, the weight file and
 * the store; the other ranks open the store read-only.
 *
 * With one process -- no mpirun, `mpirun -np 1`, or a build without MPI -- every
 * function here is an identity: no scaling, no reduction, the same arithmetic as a plain
 * build, so the weight file is bit-identical.
 *
 * The MPI implementation is compiled when NB_MPI is defined (make MPI=1, or detected:
 * see the Makefile); otherwise the same interface runs single-process. MPI_Init is only
 * called when the process was started by an MPI launcher (OMPI_COMM_WORLD_SIZE / PMIX_RANK
 * in the environment), so an MPI build started by hand behaves like the plain build.
 *
 * Failure: a rank that dies (signal, exit without MPI_Finalize) makes mpirun abort the
 * job and print which rank died; a rank that fails with an error prints
 * "nb-train: rank R of N: <message>" and calls MPI_Abort (tr_dist_abort), which ends the
 * others. Outcomes every rank reaches together (a NaN loss, a stop on a signal or
 * --stop-after) are agreed through the reductions and end every rank normally.
 */
#ifndef TR_DIST_H
#define TR_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "calibration.h"
#include "metrics.h"
#include "nn.h"
#include "rng.h"

/* Starts MPI when launched by an MPI launcher (else nothing). Returns NB_OK, or NB_EINVAL
 * when MPI_Init fails or the environment asks for MPI in a build without it (the message
 * says to rebuild with make MPI=1). */
int tr_dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* Ends MPI if tr_dist_init started it (a no-op otherwise). */
void tr_dist_finalize(void);
/* Prints "nb-train: rank R of N: msg" to stderr and, under MPI with N > 1, calls MPI_Abort
 * with exit_code so that the other ranks stop; returns (to let the caller exit) otherwise. */
void tr_dist_abort(int exit_code, const char *msg);

/* This process's rank (0 without MPI) and the number of ranks taking part (1 without MPI,
 * and 1 after tr_dist_solo). */
int tr_dist_rank(void);
int tr_dist_size(void);
/* 1 when compiled with MPI. */
int tr_dist_compiled(void);
/* From now on collectives are local (size 1): the other ranks have finished their part and
 * rank 0 continues alone (baselines, saving, registering). */
void tr_dist_solo(void);

/* This rank's share [*lo, *hi) of n items: [rank*n/size, (rank+1)*n/size). */
void tr_dist_slice(int n, int *lo, int *hi);

/* The run signature of a checkpoint (loop.h) with the number of ranks mixed in when it is
 * > 1 (an N-rank run sums in another order and draws other dropout masks), unchanged for
 * one rank so that a 1-rank checkpoint is a plain one. */
uint32_t tr_dist_signature(uint32_t sig);

/* Size > 1: reseeds m's dropout stream for the epoch from the shuffle state (the same on
 * every rank, and in the checkpoint) and the rank, so every rank draws its own masks and
 * --resume draws the same ones. Size 1: nothing (the model's own stream continues). */
void tr_dist_epoch_rng(nn_model *m, const nb_rng *shuffle);

/* One training step's agreement, after this rank's forward over n_mine of the batch's
 * n_all samples: *loss becomes the mean loss of the global batch (the ranks' losses
 * weighted by their share) and *stop becomes 1 on every rank if it was 1 on any. Size 1:
 * nothing changes. Returns NB_OK (MPI errors abort the job). */
int tr_dist_step_agree(double *loss, int *stop, int n_mine, int n_all, char *err, size_t errlen);

/* Turns this rank's gradient of its n_mine samples into the gradient of the global batch
 * of n_all: scaled by n_mine/n_all (zeroed when n_mine == 0, i.e. no forward ran), then
 * summed over the ranks by one MPI_Allreduce over m->grad_mem. Size 1: nothing. Adds the
 * bytes sent to the counter of tr_dist_bytes_reduced. Returns NB_OK. */
int tr_dist_sum_grad(nn_model *m, int n_mine, int n_all, char *err, size_t errlen);

/* 1 on every rank if flag is non-zero on any rank (size 1: flag != 0). */
int tr_dist_any(int flag);

/* Sums evaluation accumulators over the ranks: n_acc metrics accumulators, the loss sum
 * and the reliability tables (each may be NULL, the same on every rank). Size 1: nothing.
 * Returns NB_OK. */
int tr_dist_reduce_eval(tr_metrics *acc, int n_acc, double *loss, tr_reliability *rel_a,
                        tr_reliability *rel_b, char *err, size_t errlen);

/* Checks that every rank holds the same parameters (CRC-32 of m->mem). Returns NB_OK or
 * NB_EMISMATCH naming the ranks' checksums. */
int tr_dist_check_same(const nn_model *m, char *err, size_t errlen);

/* Waits for every rank (size 1: returns at once). */
void tr_dist_barrier(void);

/* Gradient bytes this rank has passed to MPI_Allreduce so far, the number of calls, and the
 * wall seconds spent in them (waiting for the slowest rank included). */
uint64_t tr_dist_bytes_reduced(void);
uint64_t tr_dist_reduce_calls(void);
double tr_dist_reduce_seconds(void);

#endif
