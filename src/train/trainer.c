/* trainer: see trainer.h. The data stream position is (epoch, next_row) of the epoch's
 * row plan (data/pack.h); step s consumes gradient_accumulation_steps micro-batches of
 * batch_size rows per rank, so resume and any world size see the same stream. */
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "data/pack.h"
#include "dist/dist.h"
#include "io/ckpt.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/best.h"
#include "train/checkpoint.h"
#include "train/checkpoint_mf.h"
#include "train/config_mindformers.h"
#include "train/eval_gen.h"
#include "train/device.h"
#include "train/dp.h"
#include "train/hf_files.h"
#include "train/metrics.h"
#include "train/mfu.h"
#include "train/pipeline.h"
#include "train/report.h"
#include "train/step.h"
#include "train/tp_dist.h"
#include "train/zero.h"

static volatile sig_atomic_t stop_requested;
static char stop_msg[256];
static size_t stop_len;
/* SIGINT / SIGTERM: finish this step, agree with the other ranks, save a last-state
 * checkpoint. Under mpirun the notice goes out at once (async-signal-safe write): if another
 * rank failed, the launcher kills this one soon after and this line is its last word. */
static void on_signal(int sig) {
    if (!stop_requested && stop_len) {
        ssize_t w = write(STDERR_FILENO, stop_msg, stop_len);
        (void)w;
    }
    stop_requested = sig;
}

struct run {
    const struct run_config *cfg;
    struct dist *d;  /* all ranks; NULL: one process */
    struct dist_grid *g; /* the process grid (d != NULL) */
    struct dp dp;    /* data parallelism over g->dp (world > 1) */
    int rank, world; /* in d (rank 0 writes logs and files) */
    int dp_rank, dp_size; /* which rows of every step this rank trains */
    const char *shard_from; /* ZeRO-3: the model folder each rank reads its weight shard from */
    struct model m;
    struct pipeline pipe;
    struct dataset *train, *eval;
    struct adamw opt;
    struct lr_schedule sched;
    struct train_state st;
    struct row_plan plan;
    int64_t plan_epoch;
    char *config_yaml;
    struct metrics *metrics;
    struct metrics_progress prog;
    struct report_writer rep; /* rank 0, cfg->report */
    double peak_gflops, flops_per_token;
    int64_t saved_step; /* the step of the last checkpoint written */
    int stop_early;
    double last_loss, last_eval; /* for the model card; NAN until logged */
    int64_t last_eval_step;
    int pretrain;
};

static int load_model(struct run *r, const char *resume_path) {
    const struct run_config *c = r->cfg;
    int lora = c->model.pet.pet_type == PET_TYPE_LORA;
    /* full fine-tuning resumes its weights from the checkpoint folder (an HF model folder) */
    const char *src = !lora && resume_path ? resume_path : c->load_checkpoint;
    if (device_check_compute(c)) return -1;
    /* param_init_type: bfloat16 keeps a frozen (LoRA) base's linear weights in bf16 */
    int bf16_base = lora && c->model.param_init_type == DTYPE_BF16;
    if (!lora && c->model.param_init_type == DTYPE_BF16)
        return err_set("model.model_config.param_init_type: bfloat16 needs a frozen base (pet_type: lora); full "
                       "fine-tuning keeps float32 weights");
    struct tp_comm tp = r->g && r->g->tp_size > 1 ? tp_comm_of(&r->g->tp) : (struct tp_comm){0};
    /* ZeRO-3 on several ranks: only the table here; each rank reads its shard in dp_init (HF safetensors
     * sources; a MindSpore .ckpt is read whole) */
    r->shard_from = r->d && c->parallel_config.zero_stage >= 3 && !bf16_base && !ckpt_is_checkpoint(src) ? src : NULL;
    char *shape = config_hf_config_json(c); /* the shape of a .ckpt with no config.json beside it */
    int bad = r->shard_from ? model_load_shape(&r->m, src, c->model.num_layers, !lora, &tp)
                            : model_load_from_tp(&r->m, src, shape, c->model.num_layers, !lora && !bf16_base, bf16_base, &tp);
    free(shape);
    if (bad) return err_wrap("load_checkpoint");
    r->m.recompute = c->model.recompute;
    if (!lora) return 0;
    const struct config_pet *p = &c->model.pet;
    if (resume_path || (p->adapter_path && p->adapter_path[0])) {
        const char *dir = resume_path ? resume_path : p->adapter_path;
        if (lora_load_adapter(&r->m, dir)) return -1;
        const struct lora_config *lc = &r->m.lora;
        if (r->rank == 0 && (lc->rank != p->lora_rank || lc->alpha != (float)p->lora_alpha ||
                             lc->dropout != (float)p->lora_dropout || lc->use_rslora != p->use_rslora))
            printf("note: %s/adapter_config.json sets r=%d, lora_alpha=%g, lora_dropout=%g, use_rslora=%s; they "
                   "override the config's lora_rank=%d, lora_alpha=%g, lora_dropout=%g, use_rslora=%s (and its "
                   "target_modules)\n",
                   dir, lc->rank, (double)lc->alpha, (double)lc->dropout, lc->use_rslora ? "true" : "false",
                   p->lora_rank, p->lora_alpha, p->lora_dropout, p->use_rslora ? "true" : "false");
        return 0;
    }
    struct lora_spec spec = {.rank = p->lora_rank,
                             .alpha = (float)p->lora_alpha,
                             .dropout = (float)p->lora_dropout,
                             .use_rslora = p->use_rslora,
                             .targets = (const char *const *)p->target_modules,
                             .n_targets = p->target_modules_regex ? 0 : p->n_target_modules,
                             .target_regex = p->target_modules_regex ? p->target_modules[0] : NULL};
    return lora_attach(&r->m, &spec, (uint64_t)c->seed);
}

static void plan_epoch(struct run *r, int64_t epoch) {
    if (r->plan.row_start && r->plan_epoch == epoch) return;
    row_plan_free(&r->plan);
    struct pack_options po = {.packing = r->cfg->train_dataset.packing,
                              .strategy = r->cfg->train_dataset.pack_strategy,
                              .shuffle = r->cfg->train_dataset.shuffle,
                              .seq_length = r->cfg->train_dataset.seq_length,
                              .seed = (uint64_t)r->cfg->seed};
    row_plan_build(&r->plan, r->train, &po, epoch);
    r->plan_epoch = epoch;
}

static int64_t rows_per_step(const struct run *r) {
    const struct config_runner *rc = &r->cfg->runner_config;
    return (int64_t)rc->batch_size * rc->gradient_accumulation_steps * r->dp_size;
}

/* What this rank writes of a checkpoint: its shard (of its tensor-parallel slices), or all of
 * it in one process. */
static struct ckpt_part own_part(struct run *r) {
    if (r->d) {
        struct ckpt_part p = dp_ckpt_part(&r->dp, &r->opt);
        p.tp_adapter_group = r->dp_rank == 0;
        return p;
    }
    int n;
    struct param *params = model_trainable(&r->m, &n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += params[i].numel;
    return (struct ckpt_part){.lo = 0, .hi = total, .m = r->opt.m, .v = r->opt.v};
}

static int save_checkpoint(struct run *r, const char *why) {
    char *path = NULL;
    int rc;
    struct ckpt_part part = own_part(r); /* every rank writes its part; the status is the same on every rank */
    rc = checkpoint_save_dist(r->d, r->cfg->output_dir, &r->m, &part, r->opt.step, &r->st, r->config_yaml,
                              r->cfg->save_total_limit, r->cfg->load_checkpoint, &path);
    if (rc) return err_wrap("saving checkpoint at step %lld", (long long)r->st.step);
    r->saved_step = r->st.step;
    if (r->cfg->checkpoint_format == CHECKPOINT_FORMAT_CKPT) { /* MindSpore's layout too, from rank 0's whole model */
        if (model_tp_on(&r->m) || r->cfg->parallel_config.zero_stage >= 3)
            rc = err_set("checkpoint_format: ckpt needs the whole model on rank 0: not with model_parallel > 1 or "
                         "zero_stage 3 yet");
        else if (r->rank == 0)
            rc = checkpoint_mf_save(&r->m, r->cfg->output_dir, r->cfg->checkpoint_prefix, r->st.step,
                                    r->cfg->save_total_limit);
        if (r->world > 1 ? dist_any(r->d, rc != 0) : rc != 0) {
            free(path);
            return rc ? rc : err_set("rank 0 could not write the .ckpt at step %lld", (long long)r->st.step);
        }
    }
    if (r->rank == 0) metrics_progress_message(&r->prog, "saved %s checkpoint %s", why, path);
    if (r->rank == 0 && r->rep.path) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "kind", why);
        cJSON_AddStringToObject(e, "path", path);
        if (report_event(r->cfg->output_dir, r->st.step, "checkpoint", e) == 0) report_writer_update(&r->rep, 0);
    }
    free(path);
    return 0;
}

static int save_final(struct run *r) {
    const char *out = r->cfg->output_dir;
    char *best = NULL;
    if (r->cfg->load_best_at_end && r->st.best_checkpoint_step > 0) { /* the final model is the best checkpoint */
        best = xasprintf("%s/checkpoints/checkpoint-%lld", out, (long long)r->st.best_checkpoint_step);
        int64_t lo, hi;
        float *shard = r->d && !r->m.has_lora ? zero_weight_shard(&r->dp, &lo, &hi, NULL, NULL) : NULL;
        int bad = shard ? checkpoint_load_weights_part(best, &r->m, lo, hi, shard) /* ZeRO-3: its shard */
                        : checkpoint_load_weights(best, &r->m); /* every rank: its own slice */
        if (shard) zero_weights_changed(&r->dp);
        if (bad) {
            err_wrap("load_best_at_end: %s", best);
            free(best);
            return -1;
        }
        if (r->rank == 0)
            metrics_progress_message(&r->prog, "load_best_at_end: the final model is %s (eval loss %.4f at step %lld)",
                                     best, r->st.best_eval_loss, (long long)r->st.best_step);
    }
    int bf16 = r->cfg->save_dtype == DTYPE_BF16, rc = 0;
    if (r->m.has_lora && model_tp_on(&r->m)) { /* collective over dp rank 0's tp group; rank 0 writes */
        if (r->dp_rank == 0) rc = lora_save_adapter(&r->m, out, r->cfg->load_checkpoint, bf16);
    } else if (!r->m.has_lora) { /* every rank writes its part of the weights (of its slices) */
        struct ckpt_part part = own_part(r);
        rc = checkpoint_save_model_dist(r->d, out, &r->m, &part, bf16, (size_t)5 << 30);
    }
    if (r->rank != 0) {
        free(best);
        return rc ? err_wrap("writing the final model to %s", out) : 0;
    }
    if (rc == 0 && r->m.has_lora && !model_tp_on(&r->m)) rc = lora_save_adapter(&r->m, out, r->cfg->load_checkpoint, bf16);
    if (rc == 0) rc = pipeline_copy_tokenizer(&r->pipe, out);
    if (rc == 0 && !r->m.has_lora) rc = file_copy_if_exists(r->cfg->load_checkpoint, out, "generation_config.json");
    const struct config_dataset *d = &r->cfg->train_dataset;
    int templated = !r->pretrain && d->format != DATA_FORMAT_TEXT && d->format != DATA_FORMAT_TOKENIZED &&
                    d->format != DATA_FORMAT_MINDFORMERS_ALPACA;
    /* the chat template training used goes with the saved tokenizer (the Alpaca prompt has none) */
    if (rc == 0 && templated && !r->pipe.alpaca_tmpl) rc = chat_template_save(out, r->pipe.tmpl);
    if (rc == 0) {
        int np;
        const struct param *tp = model_trainable(&r->m, &np);
        int64_t ntrain = 0;
        for (int i = 0; i < np; i++) ntrain += tp[i].numel;
        const struct dataset_stats *ds = &r->train->stats;
        struct model_card mc = {.cfg = r->cfg, .lora = r->m.has_lora ? &r->m.lora : NULL, .pretrain = r->pretrain,
                                .arch = model_arch_name(r->m.cfg.arch), .n_params = r->m.n_base, .n_trainable = ntrain,
                                .n_records = ds->n_records, .n_sequences = ds->n_sequences, .n_tokens = ds->n_tokens,
                                .n_trained_tokens = ds->n_trained_tokens, .steps = r->st.step, .world = r->world, .final_loss = r->last_loss,
                                .final_eval_loss = r->last_eval, .final_eval_step = r->last_eval_step,
                                .template_name = !templated ? NULL
                                                 : r->pipe.alpaca_tmpl ? "alpaca"
                                                 : d->chat_template && d->chat_template[0] ? d->chat_template
                                                                                          : "the tokenizer's own"};
        rc = model_card_write(out, &mc);
    }
    if (rc) return free(best), err_wrap("writing the final %s to %s", r->m.has_lora ? "adapter" : "model", out);
    metrics_progress_message(&r->prog, "wrote the final %s to %s", r->m.has_lora ? "PEFT adapter" : "model", out);
    if (r->rep.path) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", out);
        char *src = best ? xasprintf("best checkpoint %s", best) : xasprintf("weights after step %lld", (long long)r->st.step);
        cJSON_AddStringToObject(e, "source", src);
        free(src);
        report_event(out, r->st.step, "final_model", e);
    }
    free(best);
    return 0;
}

/* rank 0: run_info.json, events.jsonl and the first report.html (cfg->report) */
static int report_start(struct run *r, int64_t total, int64_t steps_per_epoch, const char *resume_path, int64_t ntrain) {
    const struct run_config *c = r->cfg;
    if (!c->report) return 0;
    int64_t resume_step = resume_path ? r->st.step : -1;
    const struct dataset_stats *ev = r->eval ? &r->eval->stats : NULL;
    double slots = (double)r->plan.n_rows * c->train_dataset.seq_length;
    struct report_info in = {.model_path = c->load_checkpoint, .arch = model_arch_name(r->m.cfg.arch),
                             .n_layers = r->m.cfg.n_layers, .n_params = r->m.n_base, .n_trainable = ntrain,
                             .lora = r->m.has_lora, .lora_rank = c->model.pet.lora_rank, .world = r->world,
                             .total_steps = total, .steps_per_epoch = steps_per_epoch, .resume_step = resume_step,
                             .seq_length = c->train_dataset.seq_length, .packing = c->train_dataset.packing,
                             .train = &r->train->stats, .eval = ev,
                             .packing_efficiency = slots > 0 ? (double)r->train->stats.n_tokens / slots : 0,
                             .peak_gflops = r->peak_gflops, .peak_measured = !(c->peak_gflops > 0),
                             .flops_per_token = r->flops_per_token, .save_best = c->save_best,
                             .load_best_at_end = c->load_best_at_end, .early_stopping_patience = c->early_stopping_patience};
    if (report_events_open(c->output_dir, resume_step) || report_write_info(c->output_dir, &in)) return err_wrap("report");
    if (resume_path) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", resume_path);
        if (report_event(c->output_dir, r->st.step, "resume", e)) return err_wrap("report");
    }
    report_writer_init(&r->rep, c->output_dir);
    return 0;
}

/* After an eval (el: the loss on rank 0): best checkpoint and early stopping, on every rank. */
static int after_eval(struct run *r, double el) {
    const struct run_config *c = r->cfg;
    struct eval_outcome o = {0, 0};
    if (r->rank == 0) {
        o = best_track_eval(&r->st, r->st.step, el, c->early_stopping_patience);
        if (o.improved && r->rep.path) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "eval_loss", el);
            report_event(c->output_dir, r->st.step, "best", e);
        }
    }
    if (r->d) o.improved = dist_any(r->d, o.improved), o.stop = dist_any(r->d, o.stop);
    if (o.improved && c->save_best) {
        r->st.best_checkpoint_step = r->st.step; /* written into this checkpoint and kept by pruning */
        if (save_checkpoint(r, "best")) return -1;
    }
    if (o.stop) {
        r->stop_early = 1;
        if (r->rank == 0) {
            metrics_progress_message(&r->prog, "early stopping: %lld evals without a lower eval loss (best %.4f at step %lld)",
                                     (long long)r->st.evals_without_improvement, r->st.best_eval_loss, (long long)r->st.best_step);
            if (r->rep.path) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "evals_without_improvement", (double)r->st.evals_without_improvement);
                report_event(c->output_dir, r->st.step, "early_stop", e);
            }
        }
    }
    if (r->rank == 0) report_writer_update(&r->rep, 0);
    return 0;
}

/* rank 0: the end of the run in the report */
static void report_end(struct run *r, const char *reason) {
    if (!r->rep.path) return;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "reason", reason);
    report_event(r->cfg->output_dir, r->st.step, "end", e);
    if (report_writer_update(&r->rep, 1) == 0)
        printf("report: %s (%d writes, %.3f s = %.3f%% of the run; %d skipped by the 0.5%% budget)\n", r->rep.path,
               r->rep.n_writes, r->rep.total, 100 * r->rep.total / fmax(time_now() - r->rep.t_start, 1e-9), r->rep.n_skipped);
}

/* Rank 0 picks the checkpoint to resume (skipping damaged ones, with a warning) and tells
 * every rank. */
static int find_resume(struct run *r, char **resume_path) {
    const struct run_config *c = r->cfg;
    int explicit = c->resume_from_checkpoint && c->resume_from_checkpoint[0], bad = 0, all_damaged = 0;
    if (r->rank == 0) {
        if (explicit) {
            *resume_path = xstrdup(c->resume_from_checkpoint);
            bad = checkpoint_verify(*resume_path);
        } else {
            *resume_path = checkpoint_find_resumable(c->output_dir, stderr, &all_damaged);
            bad = all_damaged;
        }
    }
    if (r->d && dist_any(r->d, bad)) return bad ? err_wrap("resume_training") : err_set("rank 0 found no checkpoint to resume");
    if (bad) return err_wrap("resume_training");
    if (r->d) {
        int64_t len = r->rank == 0 && *resume_path ? (int64_t)strlen(*resume_path) + 1 : 0;
        dist_broadcast(r->d, &len, sizeof len, 0);
        if (r->rank != 0 && len) *resume_path = xcalloc((size_t)len, 1);
        if (len) dist_broadcast(r->d, *resume_path, (size_t)len, 0);
    }
    if (*resume_path && r->rank == 0) printf("resuming from %s\n", *resume_path);
    return 0;
}

static void print_data_stats(const struct dataset *ds, const char *what) {
    const struct dataset_stats *s = &ds->stats;
    printf("%s: %lld records -> %lld sequences, %lld tokens (%lld trained)%s in %.2fs\n", what, (long long)s->n_records,
           (long long)s->n_sequences, (long long)s->n_tokens, (long long)s->n_trained_tokens,
           s->from_cache ? " [from cache]" : "", s->seconds);
    if (s->n_truncated || s->n_dropped || s->n_zero_trained || s->n_skipped_rows)
        printf("%s: %lld truncated, %lld dropped, %lld with no trained token (not trained), %lld bad rows skipped\n",
               what, (long long)s->n_truncated, (long long)s->n_dropped, (long long)s->n_zero_trained,
               (long long)s->n_skipped_rows);
}

static int setup(struct run *r, int pretrain, char **resume_path) {
    const struct run_config *c = r->cfg;
    if (r->rank == 0 && dir_create(c->output_dir)) return err_wrap("output_dir");
    if (r->rank == 0) { /* fail early, before hours of training, if output_dir is not writable */
        char *probe = path_join(c->output_dir, ".csft_write_test");
        int bad = file_write_atomic(probe, "ok", 2);
        remove(probe);
        free(probe);
        if (bad) return err_wrap("output_dir %s is not writable", c->output_dir);
    }
    if (c->resume_training && find_resume(r, resume_path)) return -1;
    if (load_model(r, *resume_path)) return -1;
    if (pipeline_open_lazy(&r->pipe, c, &c->train_dataset, &r->m.cfg, pretrain)) return err_wrap("train_dataset");
    if (pipeline_dataset(&r->pipe, &c->train_dataset, &r->train)) return err_wrap("train_dataset");
    if (r->rank == 0) print_data_stats(r->train, "train_dataset");
    if (c->eval_dataset.n_data_files > 0) {
        struct pipeline ep;
        if (pipeline_open_lazy(&ep, c, &c->eval_dataset, &r->m.cfg, pretrain)) return err_wrap("eval_dataset");
        int rc = pipeline_dataset(&ep, &c->eval_dataset, &r->eval);
        pipeline_close(&ep);
        if (rc) return err_wrap("eval_dataset");
        if (r->rank == 0) print_data_stats(r->eval, "eval_dataset");
    }
    return 0;
}

int trainer_run(const struct run_config *cfg, int pretrain, struct dist_grid *g) {
    struct run R = {0}, *r = &R;
    r->cfg = cfg;
    r->d = g && g->world->world > 1 ? g->world : NULL;
    r->g = r->d ? g : NULL;
    r->rank = r->d ? r->d->rank : 0;
    r->world = r->d ? r->d->world : 1;
    r->dp_rank = r->d ? g->dp_rank : 0;
    r->dp_size = r->d ? g->dp_size : 1;
    r->pretrain = pretrain;
    r->last_loss = r->last_eval = NAN;
    char *resume_path = NULL;
    int rc = -1;
    struct batch *mb = xcalloc((size_t)cfg->runner_config.gradient_accumulation_steps, sizeof(struct batch));
    struct micro_batch *mbs = xcalloc((size_t)cfg->runner_config.gradient_accumulation_steps, sizeof *mbs);
    metrics_progress_init(&r->prog, stdout);
    if (best_check_config(cfg) || setup(r, pretrain, &resume_path)) goto done;

    /* schedule and optimizer */
    plan_epoch(r, 0);
    int64_t steps_per_epoch = (r->plan.n_rows + rows_per_step(r) - 1) / rows_per_step(r);
    int64_t total = cfg->runner_config.max_steps > 0 ? cfg->runner_config.max_steps : steps_per_epoch * cfg->runner_config.epochs;
    r->sched.type = cfg->lr_schedule.type;
    r->sched.lr = cfg->optimizer.learning_rate;
    r->sched.total_steps = total;
    r->sched.warmup_steps = cfg->lr_schedule.warmup_steps ? cfg->lr_schedule.warmup_steps
                                                          : (int64_t)ceil(cfg->lr_schedule.warmup_ratio * (double)total);
    r->sched.decay_steps = (int64_t)ceil(cfg->lr_schedule.decay_ratio * (double)total);
    r->sched.min_lr_ratio = cfg->optimizer.learning_rate > 0 ? cfg->lr_schedule.min_lr / cfg->optimizer.learning_rate : 0;
    int n_params;
    struct param *params = model_trainable(&r->m, &n_params);
    float b1 = (float)cfg->optimizer.betas[0], b2 = (float)cfg->optimizer.betas[1], eps = (float)cfg->optimizer.eps;
    float wd = (float)cfg->optimizer.weight_decay;
    r->st.seed = (uint64_t)cfg->seed;
    r->st.dropout_seed = rng_hash((uint64_t)cfg->seed ^ 0xd1b54a32d192ed03ull);
    if (r->d) {
        struct dp_config dc = {.zero = cfg->parallel_config.zero_stage, .overlap = 1, .weights_from = r->shard_from};
        if (dp_init(&r->dp, &r->g->dp, &r->m, &dc)) goto done;
        dp_adamw_init(&r->dp, &r->opt, b1, b2, eps, wd);
        if (resume_path) { /* the weights came with the model; each rank reads its part of the moments */
            int bad = checkpoint_load_state(resume_path, &r->st, &r->opt.step) ||
                      checkpoint_load_optimizer(resume_path, &r->m, r->dp.lo, r->dp.hi, r->opt.m, r->opt.v);
            if (dist_any(r->d, bad)) {
                if (!bad) err_set("another rank could not load %s", resume_path);
                else err_wrap("checkpoint %s", resume_path);
                goto done;
            }
        }
    } else {
        adamw_init(&r->opt, params, n_params, b1, b2, eps, wd);
        if (resume_path && checkpoint_load(resume_path, &r->m, &r->opt, &r->st)) goto done;
    }

    /* resolved config, saved beside outputs and in every checkpoint */
    char *buf = NULL;
    size_t blen = 0;
    FILE *mf = open_memstream(&buf, &blen);
    config_dump_yaml(cfg, mf);
    fclose(mf);
    r->config_yaml = buf;
    if (r->rank == 0) {
        char *p = path_join(cfg->output_dir, "config.yaml");
        int bad = file_write_atomic(p, buf, blen);
        free(p);
        if (bad) goto done;
        int64_t ntrain = 0;
        for (int i = 0; i < n_params; i++) ntrain += params[i].numel;
        printf("model: %s, %d layers, %.1fM parameters, training %.2fM (%s)\n", model_arch_name(r->m.cfg.arch),
               r->m.cfg.n_layers, r->m.n_base / 1e6, ntrain / 1e6, r->m.has_lora ? "LoRA" : "full");
        printf("plan: %lld steps (%lld per epoch), %lld rows of %s per step, world %d (data_parallel %d x "
               "model_parallel %d, zero_stage %d)\n",
               (long long)total, (long long)steps_per_epoch, (long long)rows_per_step(r),
               cfg->train_dataset.packing ? "packed sequences" : "sequences", r->world, r->dp_size,
               r->g ? r->g->tp_size : 1, r->d ? cfg->parallel_config.zero_stage : 0);
        r->metrics = metrics_open(cfg->output_dir, cfg->tensorboard, resume_path ? r->st.step : -1);
        if (!r->metrics) goto done;
        r->flops_per_token = mfu_flops_per_token(&r->m.cfg, r->m.has_lora, r->m.n_lora, cfg->train_dataset.seq_length);
        r->peak_gflops = cfg->peak_gflops > 0 ? cfg->peak_gflops : mfu_measure_peak_gflops(r->m.k);
        printf("MFU: %.4g model FLOPs per token over a peak of %.1f GFLOP/s per process (%s)\n", r->flops_per_token,
               r->peak_gflops, cfg->peak_gflops > 0 ? "peak_gflops" : "measured");
        if (report_start(r, total, steps_per_epoch, resume_path, ntrain)) goto done;
    }
    if (r->d) {
        int n = snprintf(stop_msg, sizeof stop_msg,
                         "csft rank %d/%d: stopped by the launcher (signal): the job was cancelled or another rank "
                         "failed; stopping after this step with a last-state checkpoint if every rank is alive\n",
                         r->rank, r->world);
        stop_len = n > 0 && (size_t)n < sizeof stop_msg ? (size_t)n : 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL); /* mpirun and schedulers turn Ctrl-C and cancels into SIGTERM */

    struct step_comm comm = {0}, *commp = NULL;
    if (r->d) comm = dp_step_comm(&r->dp), commp = &comm;
    int64_t start_step = r->st.step;
    double t_start = time_now(), t_window = t_start, loss_window = 0;
    int64_t tok_window = 0, steps_window = 0;
    int GA = cfg->runner_config.gradient_accumulation_steps, B = cfg->runner_config.batch_size;
    while (r->st.step < total) {
        /* gather this rank's micro-batches of the step */
        for (int g = 0; g < GA; g++) {
            plan_epoch(r, r->st.epoch);
            int64_t row = r->st.next_row + ((int64_t)g * r->dp_size + r->dp_rank) * B;
            int nr = row < r->plan.n_rows ? (int)(r->plan.n_rows - row < B ? r->plan.n_rows - row : B) : 0;
            batch_fill(&mb[g], r->train, &r->plan, row, nr, r->pipe.pad_id);
            mbs[g] = (struct micro_batch){mb[g].ids, mb[g].labels, mb[g].pos, mb[g].B, mb[g].T};
        }
        r->st.next_row += rows_per_step(r);
        if (r->st.next_row >= r->plan.n_rows) r->st.epoch++, r->st.next_row = 0;
        double lr = lr_at(&r->sched, r->st.step + 1);
        struct step_result res;
        r->m.dropout_seed = r->st.dropout_seed ^ rng_hash((uint64_t)r->dp_rank + 1); /* own masks per dp rank */
        int bad = train_step(&r->m, &r->opt, mbs, GA, lr, cfg->max_grad_norm, commp, &res);
        r->st.dropout_seed = rng_hash(r->st.dropout_seed + 1);
        int64_t real = 0;
        for (int g = 0; g < GA; g++) real += mb[g].n_tokens;
        if (r->d) {
            double x = (double)real;
            dist_allreduce_sum_f64(&r->g->dp, &x, 1);
            real = (int64_t)x;
        }
        if (bad) {
            if (cfg->on_nonfinite == ON_NONFINITE_STOP)
                { err_wrap("step %lld", (long long)r->st.step + 1); goto done; }
            r->st.skipped_steps++;
            metrics_progress_message(&r->prog, "step %lld skipped: %s", (long long)r->st.step + 1, err_msg());
        }
        r->st.step++;
        r->st.tokens_seen += real;
        loss_window += bad ? 0 : res.loss, tok_window += real, steps_window += !bad;
        int last = r->st.step == total;
        if (r->rank == 0 && (r->st.step % cfg->logging_steps == 0 || last || r->st.step == start_step + 1)) {
            double now = time_now();
            struct metrics_step ms = {.step = r->st.step, .total_steps = total, .start_step = start_step,
                                      .epoch = r->st.epoch + (double)r->st.next_row / (double)(r->plan.n_rows ? r->plan.n_rows : 1),
                                      .n_epochs = (int)((total + steps_per_epoch - 1) / (steps_per_epoch ? steps_per_epoch : 1)),
                                      .loss = steps_window ? loss_window / steps_window : NAN, .lr = lr,
                                      .grad_norm = res.grad_norm, .tokens_per_sec = tok_window / fmax(now - t_window, 1e-9),
                                      .tokens = r->st.tokens_seen, .skipped_steps = r->st.skipped_steps,
                                      .elapsed = now - t_start, .peak_mem_mib = mfu_peak_rss_mib()};
            if (r->peak_gflops > 0)
                ms.mfu = ms.tokens_per_sec * r->flops_per_token / (r->peak_gflops * 1e9 * r->world);
            metrics_log_step(r->metrics, &ms);
            r->last_loss = ms.loss;
            metrics_progress_update(&r->prog, &ms);
            report_writer_update(&r->rep, 0);
            t_window = now, loss_window = 0, tok_window = 0, steps_window = 0;
        }
        /* at ZeRO-3 every rank takes part in the eval's forward passes (they gather the weights);
         * under tensor parallelism rank 0's tp group (the forward is collective) */
        int eval_here = r->rank == 0 || (r->d && r->dp.z && cfg->parallel_config.zero_stage >= 3) ||
                        (model_tp_on(&r->m) && r->dp_rank == 0);
        if (r->eval && ((cfg->eval_steps > 0 && r->st.step % cfg->eval_steps == 0) || last)) {
            double el = NAN;
            if (eval_here) {
                int64_t nt;
                el = eval_dataset_loss(&r->m, r->eval, cfg->eval_dataset.packing, cfg->eval_dataset.seq_length,
                                       cfg->runner_config.batch_size, r->pipe.pad_id, &nt);
                if (r->rank == 0) {
                    metrics_log_eval(r->metrics, r->st.step, el, nt);
                    r->last_eval = el, r->last_eval_step = r->st.step;
                    metrics_progress_message(&r->prog, "eval at step %lld: loss %.4f, perplexity %.3f (%lld tokens)",
                                             (long long)r->st.step, el, exp(el), (long long)nt);
                }
            }
            /* sample generations: rank 0 alone, so not where the forward is collective */
            int gen_alone = !model_tp_on(&r->m) && !(r->d && r->dp.z && cfg->parallel_config.zero_stage >= 3);
            if (r->rank == 0 && gen_alone && r->rep.path &&
                eval_generations(&r->m, r->eval, &r->pipe, cfg->eval_generations, cfg->predict.max_new_tokens,
                                 r->st.step, cfg->output_dir))
                goto done;
            if (after_eval(r, el)) goto done;
        }
        int stop = r->d ? dist_any(r->d, stop_requested != 0) : stop_requested != 0;
        if (stop) {
            if (save_checkpoint(r, "last-state")) goto done;
            if (r->rank == 0) report_end(r, "stopped by a signal");
            err_set("stopped by a signal after step %lld; resume with resume_training: true", (long long)r->st.step);
            goto done;
        }
        if (((cfg->save_steps > 0 && r->st.step % cfg->save_steps == 0) || last || r->stop_early) && r->saved_step != r->st.step)
            if (save_checkpoint(r, last ? "final" : r->stop_early ? "last-state" : "periodic")) goto done;
        if (r->stop_early) break;
        /* test hook: die hard (no cleanup, like a power cut) after this step */
        const char *kill_at = getenv("CSFT_TEST_KILL_AFTER_STEP");
        if (kill_at && atoll(kill_at) == r->st.step) raise(SIGKILL);
        /* test hook: "R:S" sends this process SIGTERM after step S on rank R only (the others
         * must still stop at the same step) */
        const char *term_at = getenv("CSFT_TEST_SIGTERM_AT");
        int tr;
        long long ts;
        if (term_at && sscanf(term_at, "%d:%lld", &tr, &ts) == 2 && tr == r->rank && ts == r->st.step) raise(SIGTERM);
        /* test hook: "R:S" makes rank R fail after step S (the job must end with a word from every rank) */
        const char *fail_at = getenv("CSFT_TEST_FAIL_AT");
        if (fail_at && sscanf(fail_at, "%d:%lld", &tr, &ts) == 2 && tr == r->rank && ts == r->st.step) {
            err_set("deliberate failure of rank %d after step %lld (test)", tr, ts);
            goto done;
        }
    }
    metrics_progress_end(&r->prog);
    if (save_final(r)) goto done;
    if (r->rank == 0) report_end(r, r->stop_early ? "early stopping" : "completed");
    rc = 0;
done:
    metrics_progress_end(&r->prog);
    if (r->metrics && metrics_close(r->metrics) && rc == 0) rc = -1;
    for (int g = 0; g < cfg->runner_config.gradient_accumulation_steps; g++) batch_free(&mb[g]);
    free(mb), free(mbs);
    row_plan_free(&r->plan);
    adamw_free(&r->opt);
    if (r->d && r->dp.d) dp_free(&r->dp);
    dataset_free(r->train);
    dataset_free(r->eval);
    pipeline_close(&r->pipe);
    model_free(&r->m);
    free(r->config_yaml);
    free(resume_path);
    report_writer_free(&r->rep);
    return rc;
}
