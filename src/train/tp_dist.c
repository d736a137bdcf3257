/* tp_dist: see tp_dist.h. */
#include "train/tp_dist.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "model/tp.h"

static void allreduce_f32(void *ctx, float *x, int64_t n) { dist_allreduce_sum_f32(ctx, x, n); }
static void allreduce_f64(void *ctx, double *x, int64_t n) { dist_allreduce_sum_f64(ctx, x, n); }

/* Every message here is floats, doubles or int64s: gathered as floats in place. */
static void allgather(void *ctx, const void *send, void *recv, size_t bytes) {
    struct dist *d = ctx;
    CHECK(bytes % sizeof(float) == 0 && bytes / sizeof(float) < (1u << 31), "allgather of %zu bytes", bytes);
    memcpy((char *)recv + (size_t)d->rank * bytes, send, bytes);
    dist_allgather_block_f32(d, recv, (int)(bytes / sizeof(float)));
}

struct tp_comm tp_comm_of(struct dist *d) {
    return (struct tp_comm){.rank = d->rank, .size = d->world, .ctx = d, .allreduce_sum_f32 = allreduce_f32,
                            .allreduce_sum_f64 = allreduce_f64, .allgather = allgather};
}
