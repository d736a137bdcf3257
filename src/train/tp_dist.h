/* tp_dist: the model's tensor-parallel communicator (model/tp.h) on a dist communicator (the
 * grid's tp group, dist.h). Checkpoints are written by every rank at its slices' places
 * (train/checkpoint.c), so nothing here gathers a model. */
#pragma once
#include "dist/dist.h"
#include "model/model.h"

/* The calls of struct tp_comm over d (d must outlive the model). */
struct tp_comm tp_comm_of(struct dist *d);
