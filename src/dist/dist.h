/* dist: the communication layer of data-parallel training, MPI underneath (OpenMPI), with a
 * single-process implementation behind the same calls. MPI_Init runs only when a launcher
 * started us (mpirun sets OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_SIZE), so a plain `csft` never
 * touches the MPI runtime (a singleton MPI_Init costs ~0.4 s and leaks under ASan).
 * Collectives must be called by every rank in the same order. Counts are per-call ints (MPI):
 * callers split big flat buffers into buckets (see train/dp.h). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct dist {
    int rank, world;
    int mpi;       /* 1 when MPI was initialised (launched by mpirun) */
    double comm_s; /* seconds spent inside blocking collectives and waits (statistics) */
    void *reqs;    /* outstanding non-blocking requests (MPI_Request[]), private */
    int n_reqs, cap_reqs;
    void *comm;        /* the MPI communicator (MPI_Comm *), private; MPI_COMM_WORLD for dist_init's */
    int wrank, wworld; /* this process in MPI_COMM_WORLD (messages name it) */
    /* Bytes this rank hands to the network, counted per collective in the ring model that
     * docs/distributed.md states (allreduce 2(W-1)/W n, reduce-scatter and allgather the parts
     * of the other ranks, broadcast n on the root): statistics and the volume tests. */
    int64_t bytes_sent;
};

/* The process grid (parallel_config): world = data_parallel x model_parallel ranks, world rank
 * = dp_rank * tp_size + tp_rank (tensor-parallel groups are neighbours, so on one node). dp
 * holds the ranks with this tp_rank (they keep the same tensor pieces; gradients are summed and
 * ZeRO shards over them); tp holds the ranks with this dp_rank (they split every layer). */
struct dist_grid {
    struct dist *world; /* not owned */
    struct dist dp, tp;
    int dp_size, tp_size, dp_rank, tp_rank;
};

/* Detects the launch: under mpirun initialises MPI (with thread level FUNNELED) and fills
 * rank/world; otherwise rank 0 of 1. Under MPI, errors in MPI calls abort the job with the
 * MPI error string, and SIGTERM (how mpirun ends the other ranks when one dies) prints a
 * one-line notice on each surviving rank before it exits. Returns -1 with err if MPI fails. */
int dist_init(struct dist *d, int *argc, char ***argv);
/* MPI_Finalize (after a barrier) when MPI was initialised; frees the request table. */
void dist_finalize(struct dist *d);

/* Splits world into the grid. data_parallel <= 0: world / model_parallel. A product that
 * is not the world size, model_parallel < 1 or pipeline_stage > 1 is -1 with a message naming
 * the numbers (every rank computes the same answer; no communication happens before it). */
int dist_grid_init(struct dist_grid *g, struct dist *world, int data_parallel, int model_parallel,
                   int pipeline_stage);
void dist_grid_free(struct dist_grid *g);
/* A sub-communicator: ranks with the same color, ordered by key (MPI_Comm_split). */
void dist_split(struct dist *parent, int color, int key, struct dist *out);
/* Frees a communicator made by dist_split (not dist_init's). */
void dist_free_comm(struct dist *d);

/* parallel_config.data_parallel against the world size: want <= 0 (unset) or == world is ok;
 * otherwise -1 with a message naming both numbers. Every rank computes the same answer. */
int dist_check_world(const struct dist *d, int want);
/* Prints "csft rank R/N: error: MSG" on this rank and ends the whole job (MPI_Abort; exit(1)
 * without MPI). For commands (main-level code) only: library code returns errors. */
_Noreturn void dist_abort(const struct dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Blocking collectives (no-ops or copies with one process). */
void dist_barrier(struct dist *d);
void dist_allreduce_sum_f64(struct dist *d, double *x, int64_t n); /* in place */
void dist_allreduce_sum_f32(struct dist *d, float *x, int64_t n);  /* in place */
/* Logical OR of flag over all ranks (agreement on stopping, signals, non-finite steps). */
int dist_any(struct dist *d, int flag);
void dist_broadcast(struct dist *d, void *buf, size_t bytes, int root);
/* Rank r's counts[r] elements sit at buf + displs[r]; afterwards every rank has all of them. */
void dist_allgatherv_f32(struct dist *d, float *buf, const int *counts, const int *displs);
/* root receives rank r's `send` (counts[r] elements) at recv + displs[r]; recv only read on root. */
void dist_gatherv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                      int root);
/* Inverse of gatherv: rank r receives counts[r] elements from root's send + displs[r]. */
void dist_scatterv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                       int root);

/* Non-blocking collectives: started now, completed by dist_wait_all (dist_progress lets MPI
 * advance them from inside the backward pass). The buffers must stay untouched until then. */
void dist_iallreduce_sum_f32(struct dist *d, float *x, int n);
/* Sums send (sum of counts elements, all ranks) and leaves rank r's slice [displ_r, displ_r +
 * counts[r]) in its recv (counts[r] elements). */
void dist_ireduce_scatter_sum_f32(struct dist *d, const float *send, float *recv, const int *counts);
/* Non-blocking allgatherv in place (rank r's counts[r] elements at buf + displs[r]). */
void dist_iallgatherv_f32(struct dist *d, float *buf, const int *counts, const int *displs);
/* Reduce-scatter with equal blocks: send holds world * n elements, recv gets this rank's n summed. */
void dist_reduce_scatter_block_f32(struct dist *d, const float *send, float *recv, int n);
/* Allgather with equal blocks, in place: buf holds world * n elements, this rank's at rank * n. */
void dist_allgather_block_f32(struct dist *d, float *buf, int n);
/* Non-blocking variants of the two above; completed by dist_wait_all. */
void dist_ireduce_scatter_block_f32(struct dist *d, const float *send, float *recv, int n);
void dist_iallgather_block_f32(struct dist *d, float *buf, int n);
/* One non-blocking collective that is waited for on its own (not in the dist's list). Its
 * counts/displs arrays and buffers must stay untouched until it completes. */
struct dist_req {
    void *h; /* the MPI_Request (Open MPI's is a pointer), private */
    int active;
};
void dist_iallgatherv_f32_req(struct dist *d, float *buf, const int *counts, const int *displs, struct dist_req *r);
/* send NULL: in place, recv holds the whole input and gets this rank's sum at its start. */
void dist_ireduce_scatter_f32_req(struct dist *d, const float *send, float *recv, const int *counts,
                                  struct dist_req *r);
/* 1 once r completed (lets MPI progress it: Open MPI advances collectives only inside calls). */
int dist_req_test(struct dist *d, struct dist_req *r);
void dist_req_wait(struct dist *d, struct dist_req *r);

/* 1 if every request started so far has completed (lets MPI progress them); does not wait. */
int dist_test_all(struct dist *d);
void dist_progress(struct dist *d);
void dist_wait_all(struct dist *d);
