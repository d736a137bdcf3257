/* tp_dist: the model's tensor-parallel communicator (model/tp.h) on a dist communicator (the
 * grid's tp group, dist.h), and the gathers that let one rank write a tensor-parallel model's
 * checkpoint in the one-process layout. */
#pragma once
#include "dist/dist.h"
#include "model/model.h"
#include "train/optim.h"

/* The calls of struct tp_comm over d (d must outlive the model). */
struct tp_comm tp_comm_of(struct dist *d);

/* A one-process view of m's trainable tensors: a shallow copy of m without tensor parallelism
 * whose trainable table holds the gathered whole tensors, and the gathered AdamW moments
 * (opt's m and v in table order) in *full_opt. Collective over m's tp group; only `keep` ranks
 * keep the copies (the others get nothing to free). tp_view_free releases them. */
void tp_view_gather(const struct model *m, const struct adamw *opt, int keep, struct model *view,
                    struct adamw *full_opt);
void tp_view_free(struct model *view, struct adamw *full_opt);
