/* dist: see dist.h. Each collective has an MPI branch and a one-process branch; MPI errors
 * come back as codes (MPI_ERRORS_RETURN) and end the job through dist_abort with the MPI
 * error string, so every failure names its rank and call. */
#include "dist/dist.h"

#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"

#define MPI_CHECK(d, call)                                                                                   \
    do {                                                                                                     \
        int mpi_rc_ = (call);                                                                                \
        if (mpi_rc_ != MPI_SUCCESS) {                                                                        \
            char mpi_msg_[MPI_MAX_ERROR_STRING];                                                             \
            int mpi_len_ = 0;                                                                                \
            MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                                  \
            dist_abort((d), "%s:%d: %s failed: %.*s", __FILE__, __LINE__, #call, mpi_len_, mpi_msg_);        \
        }                                                                                                    \
    } while (0)

#define COMM(d) (*(MPI_Comm *)(d)->comm)

/* Chunk size for collectives over more than INT_MAX elements. */
#define DIST_CHUNK (1 << 28)

static char term_msg[160];
static size_t term_len;

/* mpirun ends the surviving ranks with SIGTERM when one rank dies or aborts: say so here. */
static void on_sigterm(int sig) {
    ssize_t r = write(STDERR_FILENO, term_msg, term_len);
    (void)r;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

static MPI_Comm comm_world = MPI_COMM_NULL;

int dist_init(struct dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->world = d->wworld = 1;
    if (!launched_by_mpirun()) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set("MPI_Init_thread failed (launched by mpirun, OMPI_COMM_WORLD_SIZE=%s)",
                       getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : "unset");
    d->mpi = 1;
    comm_world = MPI_COMM_WORLD;
    d->comm = &comm_world;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_CHECK(d, MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(d, MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    d->wrank = d->rank, d->wworld = d->world;
    if (d->world > 1) {
        int n =
            snprintf(term_msg, sizeof term_msg,
                     "csft rank %d/%d: stopped by the launcher: another rank failed or the job was cancelled "
                     "(see the first error above)\n",
                     d->rank, d->world);
        term_len = n > 0 && (size_t)n < sizeof term_msg ? (size_t)n : sizeof term_msg - 1;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigterm;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
    }
    return 0;
}

void dist_finalize(struct dist *d) {
    if (d->mpi) {
        dist_wait_all(d);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Finalize();
    }
    free(d->reqs);
    memset(d, 0, sizeof *d);
}

void dist_split(struct dist *parent, int color, int key, struct dist *out) {
    memset(out, 0, sizeof *out);
    out->wrank = parent->wrank, out->wworld = parent->wworld;
    out->world = 1;
    if (!parent->mpi) return;
    out->mpi = 1;
    out->comm = xmalloc(sizeof(MPI_Comm));
    MPI_CHECK(parent, MPI_Comm_split(COMM(parent), color, key, (MPI_Comm *)out->comm));
    MPI_Comm_set_errhandler(COMM(out), MPI_ERRORS_RETURN);
    MPI_CHECK(out, MPI_Comm_rank(COMM(out), &out->rank));
    MPI_CHECK(out, MPI_Comm_size(COMM(out), &out->world));
}

void dist_free_comm(struct dist *d) {
    if (d->mpi && d->comm && d->comm != &comm_world) {
        dist_wait_all(d);
        MPI_Comm_free((MPI_Comm *)d->comm);
        free(d->comm);
    }
    free(d->reqs);
    memset(d, 0, sizeof *d);
}

int dist_grid_init(struct dist_grid *g, struct dist *world, int data_parallel, int model_parallel,
                   int pipeline_stage) {
    memset(g, 0, sizeof *g);
    g->world = world;
    int W = world->world;
    if (pipeline_stage > 1)
        return err_set("parallel_config.pipeline_stage is %d: pipeline parallelism is not supported yet; split the "
                       "ranks as data_parallel x model_parallel (pipeline_stage: 1)",
                       pipeline_stage);
    if (model_parallel < 1)
        return err_set("parallel_config.model_parallel is %d: it must be at least 1", model_parallel);
    if (data_parallel <= 0 && W % model_parallel)
        return err_set("parallel_config.model_parallel is %d but the job runs %d rank%s (mpirun -np %d), not a "
                       "multiple of it: launch data_parallel x %d ranks",
                       model_parallel, W, W == 1 ? "" : "s", W, model_parallel);
    int dp = data_parallel > 0 ? data_parallel : W / model_parallel;
    if ((int64_t)dp * model_parallel != W) {
        if (model_parallel == 1) return dist_check_world(world, data_parallel);
        return err_set("parallel_config.data_parallel %d x model_parallel %d = %lld ranks, but the job runs %d rank%s "
                       "(mpirun -np %d): launch mpirun -np %lld or change the grid",
                       dp, model_parallel, (long long)dp * model_parallel, W, W == 1 ? "" : "s", W,
                       (long long)dp * model_parallel);
    }
    g->dp_size = dp, g->tp_size = model_parallel;
    g->dp_rank = world->rank / model_parallel, g->tp_rank = world->rank % model_parallel;
    dist_split(world, g->tp_rank, g->dp_rank, &g->dp);
    dist_split(world, g->dp_rank, g->tp_rank, &g->tp);
    return 0;
}

void dist_grid_free(struct dist_grid *g) {
    dist_free_comm(&g->dp);
    dist_free_comm(&g->tp);
    memset(g, 0, sizeof *g);
}

int dist_check_world(const struct dist *d, int want) {
    if (want <= 0 || want == d->world) return 0;
    return err_set(
        "parallel_config.data_parallel is %d but the job runs %d rank%s (mpirun -np %d): set it to %d "
        "or leave it out",
        want, d->world, d->world == 1 ? "" : "s", d->world, d->world);
}

void dist_abort(const struct dist *d, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "csft rank %d/%d: error: %s\n", d->wrank, d->wworld, msg);
    fflush(stderr);
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void dist_barrier(struct dist *d) {
    if (!d->mpi) return;
    double t = time_now();
    MPI_CHECK(d, MPI_Barrier(COMM(d)));
    d->comm_s += time_now() - t;
}

static int64_t sum_counts(const struct dist *d, const int *counts) {
    int64_t n = 0;
    for (int r = 0; r < d->world; r++) n += counts[r];
    return n;
}

static void allreduce(struct dist *d, void *x, int64_t n, MPI_Datatype type, size_t size) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += 2 * (d->world - 1) * n * (int64_t)size / d->world;
    double t = time_now();
    for (int64_t off = 0; off < n; off += DIST_CHUNK) {
        int64_t c = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)off * size, (int)c, type, MPI_SUM,
                                   COMM(d)));
    }
    d->comm_s += time_now() - t;
}

void dist_allreduce_sum_f64(struct dist *d, double *x, int64_t n) {
    allreduce(d, x, n, MPI_DOUBLE, sizeof *x);
}
void dist_allreduce_sum_f32(struct dist *d, float *x, int64_t n) { allreduce(d, x, n, MPI_FLOAT, sizeof *x); }

int dist_any(struct dist *d, int flag) {
    if (!d->mpi || d->world == 1) return flag != 0;
    int v = flag != 0;
    d->bytes_sent += 2 * (d->world - 1) * (int64_t)sizeof v / d->world;
    double t = time_now();
    MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, COMM(d)));
    d->comm_s += time_now() - t;
    return v;
}

void dist_broadcast(struct dist *d, void *buf, size_t bytes, int root) {
    if (!d->mpi || d->world == 1) return;
    if (d->rank == root) d->bytes_sent += (int64_t)bytes;
    double t = time_now();
    for (size_t off = 0; off < bytes; off += DIST_CHUNK) {
        size_t c = bytes - off < DIST_CHUNK ? bytes - off : DIST_CHUNK;
        MPI_CHECK(d, MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, COMM(d)));
    }
    d->comm_s += time_now() - t;
}

void dist_allgatherv_f32(struct dist *d, float *buf, const int *counts, const int *displs) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += (sum_counts(d, counts) - counts[d->rank]) * (int64_t)sizeof(float);
    double t = time_now();
    MPI_CHECK(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                                COMM(d)));
    d->comm_s += time_now() - t;
}

void dist_gatherv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                      int root) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && recv + displs[0] != send)
            memmove(recv + displs[0], send, sizeof(float) * (size_t)counts[0]);
        return;
    }
    if (d->rank != root) d->bytes_sent += counts[d->rank] * (int64_t)sizeof(float);
    double t = time_now();
    MPI_CHECK(d, MPI_Gatherv(send, counts[d->rank], MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root,
                             COMM(d)));
    d->comm_s += time_now() - t;
}

void dist_scatterv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                       int root) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && send + displs[0] != recv)
            memmove(recv, send + displs[0], sizeof(float) * (size_t)counts[0]);
        return;
    }
    if (d->rank == root) d->bytes_sent += (sum_counts(d, counts) - counts[root]) * (int64_t)sizeof(float);
    double t = time_now();
    MPI_CHECK(d, MPI_Scatterv(send, counts, displs, MPI_FLOAT, recv, counts[d->rank], MPI_FLOAT, root,
                              COMM(d)));
    d->comm_s += time_now() - t;
}

static MPI_Request *req_new(struct dist *d) {
    if (d->n_reqs == d->cap_reqs) {
        d->cap_reqs = d->cap_reqs ? 2 * d->cap_reqs : 64;
        d->reqs = xrealloc(d->reqs, sizeof(MPI_Request) * (size_t)d->cap_reqs);
    }
    return (MPI_Request *)d->reqs + d->n_reqs++;
}

void dist_iallreduce_sum_f32(struct dist *d, float *x, int n) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += 2 * (d->world - 1) * (int64_t)n * (int64_t)sizeof(float) / d->world;
    MPI_CHECK(d, MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, COMM(d), req_new(d)));
}

void dist_ireduce_scatter_sum_f32(struct dist *d, const float *send, float *recv, const int *counts) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && send != recv) memmove(recv, send, sizeof(float) * (size_t)counts[0]);
        return;
    }
    d->bytes_sent += (sum_counts(d, counts) - counts[d->rank]) * (int64_t)sizeof(float);
    MPI_CHECK(d, MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, COMM(d), req_new(d)));
}

void dist_iallgatherv_f32(struct dist *d, float *buf, const int *counts, const int *displs) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += (sum_counts(d, counts) - counts[d->rank]) * (int64_t)sizeof(float);
    MPI_CHECK(d, MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, COMM(d),
                                 req_new(d)));
}

void dist_reduce_scatter_block_f32(struct dist *d, const float *send, float *recv, int n) {
    if (!d->mpi || d->world == 1) {
        if (n && send != recv) memmove(recv, send, sizeof(float) * (size_t)n);
        return;
    }
    d->bytes_sent += (int64_t)(d->world - 1) * n * (int64_t)sizeof(float);
    double t = time_now();
    MPI_CHECK(d, MPI_Reduce_scatter_block(send, recv, n, MPI_FLOAT, MPI_SUM, COMM(d)));
    d->comm_s += time_now() - t;
}

void dist_allgather_block_f32(struct dist *d, float *buf, int n) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += (int64_t)(d->world - 1) * n * (int64_t)sizeof(float);
    double t = time_now();
    MPI_CHECK(d, MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, n, MPI_FLOAT, COMM(d)));
    d->comm_s += time_now() - t;
}

void dist_ireduce_scatter_block_f32(struct dist *d, const float *send, float *recv, int n) {
    if (!d->mpi || d->world == 1) {
        if (n && send != recv) memmove(recv, send, sizeof(float) * (size_t)n);
        return;
    }
    d->bytes_sent += (int64_t)(d->world - 1) * n * (int64_t)sizeof(float);
    MPI_CHECK(d, MPI_Ireduce_scatter_block(send, recv, n, MPI_FLOAT, MPI_SUM, COMM(d), req_new(d)));
}

void dist_iallgather_block_f32(struct dist *d, float *buf, int n) {
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += (int64_t)(d->world - 1) * n * (int64_t)sizeof(float);
    MPI_CHECK(d, MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, n, MPI_FLOAT, COMM(d), req_new(d)));
}

_Static_assert(sizeof(MPI_Request) == sizeof(void *), "MPI_Request is stored in a void *");

void dist_iallgatherv_f32_req(struct dist *d, float *buf, const int *counts, const int *displs, struct dist_req *r) {
    r->active = 0;
    if (!d->mpi || d->world == 1) return;
    d->bytes_sent += (sum_counts(d, counts) - counts[d->rank]) * (int64_t)sizeof(float);
    MPI_Request q;
    MPI_CHECK(d, MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, COMM(d), &q));
    memcpy(&r->h, &q, sizeof q);
    r->active = 1;
}

void dist_ireduce_scatter_f32_req(struct dist *d, const float *send, float *recv, const int *counts,
                                  struct dist_req *r) {
    r->active = 0;
    if (!d->mpi || d->world == 1) {
        if (send && counts[0] && send != recv) memmove(recv, send, sizeof(float) * (size_t)counts[0]);
        return;
    }
    d->bytes_sent += (sum_counts(d, counts) - counts[d->rank]) * (int64_t)sizeof(float);
    MPI_Request q;
    MPI_CHECK(d, MPI_Ireduce_scatter(send ? send : MPI_IN_PLACE, recv, counts, MPI_FLOAT, MPI_SUM, COMM(d), &q));
    memcpy(&r->h, &q, sizeof q);
    r->active = 1;
}

int dist_req_test(struct dist *d, struct dist_req *r) {
    if (!r->active) return 1;
    MPI_Request q;
    memcpy(&q, &r->h, sizeof q);
    int flag = 0;
    MPI_CHECK(d, MPI_Test(&q, &flag, MPI_STATUS_IGNORE));
    memcpy(&r->h, &q, sizeof q);
    if (flag) r->active = 0;
    return flag;
}

void dist_req_wait(struct dist *d, struct dist_req *r) {
    if (!r->active) return;
    MPI_Request q;
    memcpy(&q, &r->h, sizeof q);
    double t = time_now();
    MPI_CHECK(d, MPI_Wait(&q, MPI_STATUS_IGNORE));
    d->comm_s += time_now() - t;
    r->active = 0;
}

int dist_test_all(struct dist *d) {
    if (!d->n_reqs) return 1;
    int flag;
    MPI_CHECK(d, MPI_Testall(d->n_reqs, (MPI_Request *)d->reqs, &flag, MPI_STATUSES_IGNORE));
    if (flag) d->n_reqs = 0;
    return flag;
}

void dist_progress(struct dist *d) {
    if (!d->n_reqs) return;
    int flag;
    MPI_CHECK(d, MPI_Testall(d->n_reqs, (MPI_Request *)d->reqs, &flag, MPI_STATUSES_IGNORE));
    if (flag) d->n_reqs = 0;
}

void dist_wait_all(struct dist *d) {
    if (!d->n_reqs) return;
    double t = time_now();
    MPI_CHECK(d, MPI_Waitall(d->n_reqs, (MPI_Request *)d->reqs, MPI_STATUSES_IGNORE));
    d->n_reqs = 0;
    d->comm_s += time_now() - t;
}
