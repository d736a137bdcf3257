/* trainer: see trainer.h. The data stream position is (epoch, next_row) of the epoch's
 * row plan (data/pack.h); step s consumes gradient_accumulation_steps micro-batches of
 * batch_size rows per rank, so resume and any world size see the same stream. */
#include "train/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "data/pack.h"
#include "dist/dist.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/checkpoint_mf.h"
#include "train/config_mindformers.h"
#include "train/dp.h"
#include "train/metrics.h"
#include "train/pipeline.h"
#include "train/step.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

struct run {
    const struct run_config *cfg;
    struct dist *d;  /* NULL: one process */
    struct dp dp;    /* data parallelism (world > 1) */
    int rank, world;
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
};

static int load_model(struct run *r, const char *resume_path) {
    const struct run_config *c = r->cfg;
    int lora = c->model.pet.pet_type == PET_TYPE_LORA;
    /* full fine-tuning resumes its weights from the checkpoint folder (an HF model folder) */
    const char *src = !lora && resume_path ? resume_path : c->load_checkpoint;
    if (c->model.compute_dtype == DTYPE_BF16)
        return err_set("model.model_config.compute_dtype: bfloat16 compute is not supported on this backend yet; "
                       "param_init_type: bfloat16 keeps a frozen LoRA base in bf16");
    /* param_init_type: bfloat16 keeps a frozen (LoRA) base's linear weights in bf16 */
    int bf16_base = lora && c->model.param_init_type == DTYPE_BF16;
    if (!lora && c->model.param_init_type == DTYPE_BF16)
        return err_set("model.model_config.param_init_type: bfloat16 needs a frozen base (pet_type: lora); full "
                       "fine-tuning keeps float32 weights");
    char *shape = config_hf_config_json(c); /* the shape of a .ckpt with no config.json beside it */
    int bad = model_load_from(&r->m, src, shape, c->model.num_layers, !lora && !bf16_base, bf16_base);
    free(shape);
    if (bad) return err_wrap("load_checkpoint");
    r->m.recompute = c->model.recompute;
    if (!lora) return 0;
    const struct config_pet *p = &c->model.pet;
    if (resume_path || (p->adapter_path && p->adapter_path[0]))
        return lora_load_adapter(&r->m, resume_path ? resume_path : p->adapter_path);
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
    return (int64_t)rc->batch_size * rc->gradient_accumulation_steps * r->world;
}

/* The full optimizer state on rank 0 (gathered from the shards under ZeRO-1). */
static struct adamw *full_optimizer(struct run *r, struct adamw *tmp) {
    if (r->world == 1 || !r->dp.cfg.zero) return &r->opt;
    *tmp = r->opt;
    tmp->n = r->dp.n;
    tmp->m = r->rank == 0 ? xcalloc((size_t)r->dp.n, sizeof(float)) : NULL;
    tmp->v = r->rank == 0 ? xcalloc((size_t)r->dp.n, sizeof(float)) : NULL;
    dp_optim_gather(&r->dp, &r->opt, tmp->m, tmp->v, 0);
    return tmp;
}

static int save_checkpoint(struct run *r, const char *why) {
    struct adamw tmp, *o = full_optimizer(r, &tmp);
    int rc = 0;
    char *path = NULL;
    if (r->rank == 0 && checkpoint_save(r->cfg->output_dir, &r->m, o, &r->st, r->config_yaml, r->cfg->save_total_limit,
                                        r->cfg->load_checkpoint, &path))
        rc = err_wrap("saving checkpoint at step %lld", (long long)r->st.step);
    if (o != &r->opt) free(tmp.m), free(tmp.v);
    if (rc == 0 && r->rank == 0 && r->cfg->checkpoint_format == CHECKPOINT_FORMAT_CKPT)
        rc = checkpoint_mf_save(&r->m, r->cfg->output_dir, r->cfg->checkpoint_prefix, r->st.step, r->cfg->save_total_limit);
    if (r->world > 1 && dist_any(r->d, rc != 0)) /* every rank learns that the save failed */
        return rc ? rc : err_set("rank 0 could not save the checkpoint at step %lld", (long long)r->st.step);
    if (rc) return rc;
    if (r->rank == 0) metrics_progress_message(&r->prog, "saved %s checkpoint %s", why, path);
    free(path);
    return 0;
}

static int save_final(struct run *r) {
    if (r->rank != 0) return 0;
    const char *out = r->cfg->output_dir;
    int bf16 = r->cfg->save_dtype == DTYPE_BF16;
    int rc = r->m.has_lora ? lora_save_adapter(&r->m, out, r->cfg->load_checkpoint)
                           : model_save(&r->m, out, bf16, (size_t)5 << 30);
    if (rc == 0) rc = pipeline_copy_tokenizer(&r->pipe, out);
    if (rc == 0 && !r->m.has_lora) rc = file_copy_if_exists(r->cfg->load_checkpoint, out, "generation_config.json");
    if (rc) return err_wrap("writing the final %s to %s", r->m.has_lora ? "adapter" : "model", out);
    metrics_progress_message(&r->prog, "wrote the final %s to %s", r->m.has_lora ? "PEFT adapter" : "model", out);
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
    if (c->resume_training) {
        if (c->resume_from_checkpoint && c->resume_from_checkpoint[0]) *resume_path = xstrdup(c->resume_from_checkpoint);
        else *resume_path = checkpoint_find_latest(c->output_dir);
        if (*resume_path && r->rank == 0) printf("resuming from %s\n", *resume_path);
    }
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

int trainer_run(const struct run_config *cfg, int pretrain, struct dist *d) {
    struct run R = {0}, *r = &R;
    r->cfg = cfg;
    r->d = d && d->world > 1 ? d : NULL;
    r->rank = r->d ? d->rank : 0;
    r->world = r->d ? d->world : 1;
    char *resume_path = NULL;
    int rc = -1;
    struct batch *mb = xcalloc((size_t)cfg->runner_config.gradient_accumulation_steps, sizeof(struct batch));
    struct micro_batch *mbs = xcalloc((size_t)cfg->runner_config.gradient_accumulation_steps, sizeof *mbs);
    metrics_progress_init(&r->prog, stdout);
    if (setup(r, pretrain, &resume_path)) goto done;

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
        struct dp_config dc = {.zero = cfg->parallel_config.zero_stage >= 1, .overlap = 1};
        if (dp_init(&r->dp, r->d, &r->m, &dc)) goto done;
        dp_adamw_init(&r->dp, &r->opt, b1, b2, eps, wd);
        if (resume_path) { /* every rank reads the checkpoint; the optimizer state is then split */
            struct adamw full;
            adamw_init(&full, params, n_params, b1, b2, eps, wd);
            int bad = checkpoint_load(resume_path, &r->m, &full, &r->st);
            if (dist_any(r->d, bad)) {
                adamw_free(&full);
                if (!bad) err_set("another rank could not load %s", resume_path);
                goto done;
            }
            dp_optim_scatter(&r->dp, &r->opt, full.m, full.v, 0);
            r->opt.step = full.step;
            adamw_free(&full);
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
        printf("plan: %lld steps (%lld per epoch), %lld rows of %s per step, world %d\n", (long long)total,
               (long long)steps_per_epoch, (long long)rows_per_step(r), cfg->train_dataset.packing ? "packed sequences" : "sequences",
               r->world);
        r->metrics = metrics_open(cfg->output_dir, cfg->tensorboard, resume_path ? r->st.step : -1);
        if (!r->metrics) goto done;
    }
    signal(SIGINT, on_signal);
    if (!r->d) signal(SIGTERM, on_signal); /* under mpirun, SIGTERM means another rank failed (dist.c) */

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
            int64_t row = r->st.next_row + ((int64_t)g * r->world + r->rank) * B;
            int nr = row < r->plan.n_rows ? (int)(r->plan.n_rows - row < B ? r->plan.n_rows - row : B) : 0;
            batch_fill(&mb[g], r->train, &r->plan, row, nr, r->pipe.pad_id);
            mbs[g] = (struct micro_batch){mb[g].ids, mb[g].labels, mb[g].pos, mb[g].B, mb[g].T};
        }
        r->st.next_row += rows_per_step(r);
        if (r->st.next_row >= r->plan.n_rows) r->st.epoch++, r->st.next_row = 0;
        double lr = lr_at(&r->sched, r->st.step + 1);
        struct step_result res;
        r->m.dropout_seed = r->st.dropout_seed ^ rng_hash((uint64_t)r->rank + 1); /* own masks per rank */
        int bad = train_step(&r->m, &r->opt, mbs, GA, lr, cfg->max_grad_norm, commp, &res);
        r->st.dropout_seed = rng_hash(r->st.dropout_seed + 1);
        int64_t real = 0;
        for (int g = 0; g < GA; g++) real += mb[g].n_tokens;
        if (r->d) {
            double x = (double)real;
            dist_allreduce_sum_f64(r->d, &x, 1);
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
                                      .elapsed = now - t_start};
            metrics_log_step(r->metrics, &ms);
            metrics_progress_update(&r->prog, &ms);
            t_window = now, loss_window = 0, tok_window = 0, steps_window = 0;
        }
        if (r->eval && ((cfg->eval_steps > 0 && r->st.step % cfg->eval_steps == 0) || last) && r->rank == 0) {
            int64_t nt;
            double el = eval_dataset_loss(&r->m, r->eval, cfg->eval_dataset.packing, cfg->eval_dataset.seq_length,
                                          cfg->runner_config.batch_size, r->pipe.pad_id, &nt);
            metrics_log_eval(r->metrics, r->st.step, el, nt);
            metrics_progress_message(&r->prog, "eval at step %lld: loss %.4f, perplexity %.3f (%lld tokens)",
                                     (long long)r->st.step, el, exp(el), (long long)nt);
        }
        int stop = r->d ? dist_any(r->d, stop_requested != 0) : stop_requested != 0;
        if (stop) {
            if (save_checkpoint(r, "last-state")) goto done;
            err_set("stopped by a signal after step %lld; resume with resume_training: true", (long long)r->st.step);
            goto done;
        }
        if ((cfg->save_steps > 0 && r->st.step % cfg->save_steps == 0) || last)
            if (save_checkpoint(r, last ? "final" : "periodic")) goto done;
        /* test hook: die hard (no cleanup, like a power cut) after this step */
        const char *kill_at = getenv("CSFT_TEST_KILL_AFTER_STEP");
        if (kill_at && atoll(kill_at) == r->st.step) raise(SIGKILL);
    }
    metrics_progress_end(&r->prog);
    if (save_final(r)) goto done;
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
    return rc;
}
