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

int dist_init(struct dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    if (!launched_by_mpirun()) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set("MPI_Init_thread failed (launched by mpirun, OMPI_COMM_WORLD_SIZE=%s)",
                       getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : "unset");
    d->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_CHECK(d, MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(d, MPI_Comm_size(MPI_COMM_WORLD, &d->world));
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
    fprintf(stderr, "csft rank %d/%d: error: %s\n", d->rank, d->world, msg);
    fflush(stderr);
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void dist_barrier(struct dist *d) {
    if (!d->mpi) return;
    double t = time_now();
    MPI_CHECK(d, MPI_Barrier(MPI_COMM_WORLD));
    d->comm_s += time_now() - t;
}

static void allreduce(struct dist *d, void *x, int64_t n, MPI_Datatype type, size_t size) {
    if (!d->mpi || d->world == 1) return;
    double t = time_now();
    for (int64_t off = 0; off < n; off += DIST_CHUNK) {
        int64_t c = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)off * size, (int)c, type, MPI_SUM,
                                   MPI_COMM_WORLD));
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
    double t = time_now();
    MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD));
    d->comm_s += time_now() - t;
    return v;
}

void dist_broadcast(struct dist *d, void *buf, size_t bytes, int root) {
    if (!d->mpi || d->world == 1) return;
    double t = time_now();
    for (size_t off = 0; off < bytes; off += DIST_CHUNK) {
        size_t c = bytes - off < DIST_CHUNK ? bytes - off : DIST_CHUNK;
        MPI_CHECK(d, MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, MPI_COMM_WORLD));
    }
    d->comm_s += time_now() - t;
}

void dist_allgatherv_f32(struct dist *d, float *buf, const int *counts, const int *displs) {
    if (!d->mpi || d->world == 1) return;
    double t = time_now();
    MPI_CHECK(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                                MPI_COMM_WORLD));
    d->comm_s += time_now() - t;
}

void dist_gatherv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                      int root) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && recv + displs[0] != send)
            memmove(recv + displs[0], send, sizeof(float) * (size_t)counts[0]);
        return;
    }
    double t = time_now();
    MPI_CHECK(d, MPI_Gatherv(send, counts[d->rank], MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root,
                             MPI_COMM_WORLD));
    d->comm_s += time_now() - t;
}

void dist_scatterv_f32(struct dist *d, const float *send, float *recv, const int *counts, const int *displs,
                       int root) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && send + displs[0] != recv)
            memmove(recv, send + displs[0], sizeof(float) * (size_t)counts[0]);
        return;
    }
    double t = time_now();
    MPI_CHECK(d, MPI_Scatterv(send, counts, displs, MPI_FLOAT, recv, counts[d->rank], MPI_FLOAT, root,
                              MPI_COMM_WORLD));
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
    MPI_CHECK(d, MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req_new(d)));
}

void dist_ireduce_scatter_sum_f32(struct dist *d, const float *send, float *recv, const int *counts) {
    if (!d->mpi || d->world == 1) {
        if (counts[0] && send != recv) memmove(recv, send, sizeof(float) * (size_t)counts[0]);
        return;
    }
    MPI_CHECK(d, MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req_new(d)));
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
