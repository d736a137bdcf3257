/* config_mindformers: see config_mindformers.h. Semantics follow MindFormers' template.py
 * defaults, class constructors and run_mindformer.py as summarized in docs/mindformers.md (from
 * ../shared/reference/mindformers/formats.md section 3). The translation walks their document
 * with libyaml (anchors resolved by the parser), emits native assignments, and checks every
 * key it meets against the rule table below, which also generates the docs table. */
#include "train/config_mindformers.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/err.h"
#include "core/util.h"
#include "io/ckpt.h"

/* ---------------------------------------------------------------- the rule table */

/* Every key of their configs: H honoured (csft does the same), M mapped onto a native key,
 * I ignored (no effect on the math in csft, or MindSpore-only). '*' matches one component;
 * list entries are named by their `type` (callbacks.CheckpointMonitor.prefix). The first match wins. */
static const struct rule {
    const char *pat;
    char status;
    const char *how;
} rules[] = {
    {"seed", 'M', "seed"},
    {"output_dir", 'M', "output_dir (csft writes its checkpoints, final model and metrics there)"},
    {"load_checkpoint", 'M', "load_checkpoint: an HF folder, a .ckpt file or a folder with rank_0/*.ckpt"},
    {"load_ckpt_format", 'H', "csft detects the format from load_checkpoint (safetensors folder or .ckpt)"},
    {"resume_training", 'M', "resume_training (csft resumes from its own newest checkpoint in output_dir)"},
    {"run_mode", 'M', "run_mode (train = finetune: both train on the handler's labels; predict_with_train_model = predict)"},
    {"use_parallel", 'M', "False: one process (parallel_config not used); True: the layout of parallel_config"},
    {"micro_batch_interleave_num", 'M', "multiplies the global batch (folded into gradient_accumulation_steps)"},
    {"do_eval", 'M', "with eval_dataset: eval_dataset.data_files"},
    {"eval_step_interval", 'M', "eval_steps (-1 = only at the end)"},
    {"eval_epoch_interval", 'I', "csft evaluates every eval_steps steps and at the end"},
    {"auto_trans_ckpt", 'I', "re-slicing weights for a parallel strategy: csft loads whole weights on every process"},
    {"only_save_strategy", 'I', "MindSpore parallel-strategy files; csft has none"},
    {"src_strategy_path_or_dir", 'I', "MindSpore parallel-strategy files; csft has none"},
    {"transform_process_num", 'I', "MindSpore weight re-slicing; csft has none"},
    {"ignore_data_skip", 'I', "csft resumes at the exact data position saved in its checkpoint"},
    {"data_skip_steps", 'I', "csft resumes at the exact data position saved in its checkpoint"},
    {"profile", 'I', "MindSpore profiler"},
    {"profile_*", 'I', "MindSpore profiler"},
    {"init_start_profile", 'I', "MindSpore profiler"},
    {"layer_scale", 'I', "not used by the SFT trainer (only with lr_scale)"},
    {"layer_decay", 'I', "not used by the SFT trainer (only with lr_scale)"},
    {"lr_scale", 'I', "False in their configs; csft takes the learning rate as written"},
    {"lr_scale_factor", 'I', "only used with lr_scale: True"},
    {"auto_tune", 'I', "MindSpore auto-tuning"},
    {"autotune_per_step", 'I', "MindSpore auto-tuning"},
    {"filepath_prefix", 'I', "MindSpore auto-tuning"},
    {"remote_save_url", 'I', "AICC object storage upload"},
    {"trainer.type", 'H', "CausalLanguageModelingTrainer: csft's trainer (run_mode picks the loss)"},
    {"trainer.model_name", 'I', "a name only; the model comes from load_checkpoint"},
    {"runner_config.epochs", 'M', "runner_config.epochs"},
    {"runner_config.batch_size", 'M', "runner_config.batch_size (sequences per process per micro batch)"},
    {"runner_config.gradient_accumulation_steps", 'M', "folded into the global batch (parallel layout)"},
    {"runner_config.sink_mode", 'I', "data sinking to the device; same math"},
    {"runner_config.sink_size", 'I', "data sinking to the device; only renames epochs in their logs"},
    {"runner_wrapper.type", 'H', "MFTrainOneStepCell: one optimizer step per global batch"},
    {"runner_wrapper.use_clip_grad", 'M', "max_grad_norm (False or absent in a given section: 0 = no clipping)"},
    {"runner_wrapper.max_grad_norm", 'M', "max_grad_norm (when use_clip_grad)"},
    {"runner_wrapper.scale_sense", 'M', "loss scaling exists for float16; csft trains in float32, so only its rule "
                                         "stays: a step with a non-finite gradient is skipped (on_nonfinite: skip)"},
    {"runner_wrapper.scale_sense.*", 'I', "loss-scale value and update rule: not needed in float32"},
    {"runner_wrapper.local_norm", 'I', "extra logging"},
    {"runner_wrapper.calculate_per_token_loss", 'I', "csft's loss is already the mean over the global batch's tokens"},
    {"runner_wrapper.use_skip_data_by_global_norm", 'I', "not supported; on_nonfinite: skip covers non-finite norms"},
    {"optimizer.type", 'M', "optimizer.type (AdamW; same update, same no-decay rule for 1-D weights and biases)"},
    {"optimizer.betas", 'M', "optimizer.betas (class default [0.9, 0.999])"},
    {"optimizer.eps", 'M', "optimizer.eps (class default 1e-8)"},
    {"optimizer.weight_decay", 'M', "optimizer.weight_decay (class default 0)"},
    {"optimizer.learning_rate", 'M', "optimizer.learning_rate, unless lr_schedule.learning_rate is set (it wins)"},
    {"lr_schedule.type", 'M', "lr_schedule.type: CosineWithWarmUpLR = cosine, LinearWithWarmUpLR = linear, "
                              "ConstantWarmUpLR = constant, WarmUpStableDecayLR = wsd"},
    {"lr_schedule.learning_rate", 'M', "optimizer.learning_rate (the peak)"},
    {"lr_schedule.lr_end", 'M', "lr_schedule.min_lr"},
    {"lr_schedule.warmup_ratio", 'M', "lr_schedule.warmup_ratio"},
    {"lr_schedule.warmup_steps", 'M', "lr_schedule.warmup_steps"},
    {"lr_schedule.total_steps", 'M', "-1 or absent: epochs x steps per epoch (csft's default); N: runner_config.max_steps"},
    {"lr_schedule.decay_ratio", 'M', "lr_schedule.decay_ratio (wsd)"},
    {"lr_schedule.warmup_lr_init", 'H', "0 only (csft warms up from 0)"},
    {"lr_schedule.num_cycles", 'H', "0.5 only (one half cosine)"},
    {"*_dataset.data_loader.type", 'M', "MindDataset: data_files = dataset_dir (MindRecord, pre-tokenized); "
                                         "CommonDataLoader / HFDataLoader: data_files = path or data_files"},
    {"*_dataset.data_loader.dataset_dir", 'M', "data_files (the MindRecord file or folder; --train_dataset_dir wins)"},
    {"*_dataset.data_loader.path", 'M', "data_files when it is a local file or folder (a Hub id is refused: csft "
                                        "does not download)"},
    {"*_dataset.data_loader.data_files", 'M', "data_files"},
    {"*_dataset.data_loader.load_func", 'H', "load_dataset / load_from_disk: csft reads both kinds of local data"},
    {"*_dataset.data_loader.split", 'H', "train only"},
    {"*_dataset.data_loader.shuffle", 'M', "shuffle"},
    {"*_dataset.data_loader.packing", 'M', "pack: packing: true, pack_strategy: pack, truncation: drop"},
    {"*_dataset.data_loader.handler.AlpacaInstructDataHandler", 'M', "format: mindformers_alpaca (their prompt "
                                                                     "text, trained spans and tokenization)"},
    {"*_dataset.data_loader.handler.PackingHandler", 'M', "packing: true, pack_strategy: pack, truncation: drop"},
    {"*_dataset.data_loader.handler", 'M', "AlpacaInstructDataHandler: format: mindformers_alpaca; PackingHandler: "
                                           "packing (as data_loader.packing: pack)"},
    {"*_dataset.data_loader.handler.*.seq_length", 'M', "seq_length"},
    {"*_dataset.data_loader.handler.*.pack_strategy", 'M', "pack: as packing: pack"},
    {"*_dataset.data_loader.handler.*.tokenizer.vocab_file", 'M', "vocab_file"},
    {"*_dataset.data_loader.handler.*.tokenizer.merges_file", 'M', "merges_file"},
    {"*_dataset.data_loader.handler.*.tokenizer.*", 'I', "special tokens and class come from the tokenizer files"},
    {"*_dataset.data_loader.handler.*.prompt_key", 'I', "not used by AlpacaInstructDataHandler"},
    {"*_dataset.data_loader.handler.*.output_columns", 'I', "column plumbing"},
    {"*_dataset.data_loader.handler.*.is_dynamic", 'I', "dynamic shapes: csft pads each batch to its longest row"},
    {"*_dataset.data_loader.handler.*.padding", 'I', "csft pads each batch to its longest row (same loss)"},
    {"*_dataset.data_loader.adaptor_config.*", 'I', "mask representation (full or compressed): same attention"},
    {"*_dataset.data_loader.column_names", 'I', "column plumbing"},
    {"*_dataset.data_loader.create_*", 'I', "mask representation: same attention"},
    {"*_dataset.data_loader.compressed_eod_mask_length", 'I', "mask representation"},
    {"*_dataset.data_loader.use_broadcast_data", 'I', "data broadcast between ranks"},
    {"*_dataset.input_columns", 'H', "the columns are read by name (input_ids + labels, or + target_ids: every "
                                     "non-pad token trained)"},
    {"*_dataset.construct_args_key", 'H', "positional binding to the model: target_ids is the labels column"},
    {"*_dataset.batch_size", 'M', "runner_config.batch_size when runner_config has none"},
    {"*_dataset.drop_remainder", 'I', "csft keeps a short last step of an epoch (one more optimizer step)"},
    {"*_dataset.repeat", 'H', "1 only"},
    {"*_dataset.num_parallel_workers", 'I', "loader performance"},
    {"*_dataset.python_multiprocessing", 'I', "loader performance"},
    {"*_dataset.numa_enable", 'I', "loader performance"},
    {"*_dataset.prefetch_size", 'I', "loader performance"},
    {"*_dataset.seed", 'I', "csft seeds everything from seed"},
    {"*_dataset_task.type", 'I', "CausalLanguageModelDataset: the dataset sections are read directly"},
    {"*_dataset_task.dataset_config", 'I', "an alias of train_dataset / eval_dataset"},
    {"*_dataset_task.dataset_config.*", 'I', "an alias of train_dataset / eval_dataset"},
    {"parallel.enable_parallel_optimizer", 'M', "parallel_config.zero_stage: 1 (optimizer state sharded over the "
                                                "data-parallel processes)"},
    {"parallel.*", 'I', "MindSpore auto-parallel context (modes, search, strategy files, communication)"},
    {"parallel_config.data_parallel", 'M', "parallel_config.data_parallel (see the layout note)"},
    {"parallel_config.model_parallel", 'M', "parallel_config.model_parallel (tensor parallelism; mpirun -np = data_parallel x model_parallel)"},
    {"parallel_config.pipeline_stage", 'M', "folded into data parallelism with the same global batch (layout note)"},
    {"parallel_config.context_parallel", 'M', "folded into data parallelism with the same global batch (layout note)"},
    {"parallel_config.micro_batch_num", 'M', "part of the global batch when pipeline_stage > 1 (gradient accumulation)"},
    {"parallel_config.*", 'I', "placement of a parallel layout csft does not use (same math)"},
    {"recompute_config.recompute", 'M', "model.model_config.recompute (any layer recomputed: csft recomputes every "
                                        "layer; same math, more compute)"},
    {"recompute_config.*", 'I', "selective / communication recomputation: csft's recompute covers them"},
    {"callbacks.MFLossMonitor", 'H', "csft logs loss, learning rate and gradient norm"},
    {"callbacks.MFLossMonitor.per_print_times", 'M', "logging_steps"},
    {"callbacks.CheckpointMonitor", 'M', "checkpoints (class defaults: every step, keep 5, ckpt)"},
    {"callbacks.CheckpointMonitor.save_checkpoint_steps", 'M', "save_steps"},
    {"callbacks.CheckpointMonitor.keep_checkpoint_max", 'M', "save_total_limit"},
    {"callbacks.CheckpointMonitor.checkpoint_format", 'M', "checkpoint_format (ckpt also writes rank_0/*.ckpt)"},
    {"callbacks.CheckpointMonitor.prefix", 'M', "checkpoint_prefix"},
    {"callbacks.CheckpointMonitor.*", 'I', "how MindSpore writes (integrated/async/redundancy): csft writes whole "
                                           "tensors atomically"},
    {"callbacks.*", 'I', "other MindSpore callbacks"},
    {"context.device_target", 'I', "csft uses its CPU backend (or CUDA when built with it)"},
    {"context.*", 'I', "MindSpore runtime (graph mode, memory, JIT, Ascend precision): no SFT math"},
    {"model.arch.type", 'H', "LlamaForCausalLM: csft's decoder (Qwen2 / Llama from config.json)"},
    {"model.model_config.type", 'H', "LlamaConfig"},
    {"model.model_config.num_layers", 'M', "model.model_config.num_layers (the first N layers of the checkpoint)"},
    {"model.model_config.seq_length", 'M', "train_dataset.seq_length when the handlers give none (MindRecord rows "
                                          "hold seq_length + 1 tokens)"},
    {"model.model_config.hidden_size", 'H', "checked against config.json (shape of a .ckpt without one)"},
    {"model.model_config.num_heads", 'H', "checked against config.json num_attention_heads"},
    {"model.model_config.n_kv_heads", 'H', "checked against config.json num_key_value_heads"},
    {"model.model_config.vocab_size", 'H', "checked against config.json"},
    {"model.model_config.intermediate_size", 'H', "checked against config.json"},
    {"model.model_config.qkv_has_bias", 'H', "checked against config.json (Qwen2 has q/k/v biases)"},
    {"model.model_config.rms_norm_eps", 'H', "checked against config.json"},
    {"model.model_config.theta", 'H', "checked against config.json rope_theta"},
    {"model.model_config.tie_word_embeddings", 'H', "checked against config.json"},
    {"model.model_config.max_position_embedding", 'I', "RoPE table length; csft computes RoPE for any position"},
    {"model.model_config.batch_size", 'I', "the batch comes from runner_config"},
    {"model.model_config.*_token_id", 'I', "the tokenizer files and config.json give the special ids"},
    {"model.model_config.ignore_token_id", 'H', "-100"},
    {"model.model_config.compute_dtype", 'I', "csft computes in float32 (bfloat16 matmuls are not emulated)"},
    {"model.model_config.param_init_type", 'M', "model.model_config.param_init_type (bfloat16 only for a LoRA base)"},
    {"model.model_config.layernorm_compute_type", 'H', "float32"},
    {"model.model_config.softmax_compute_type", 'H', "float32"},
    {"model.model_config.rotary_dtype", 'H', "float32"},
    {"model.model_config.use_past", 'H', "False for training (csft's predict uses a KV cache)"},
    {"model.model_config.use_flash_attention", 'I', "an attention kernel; same math"},
    {"model.model_config.use_past_shard", 'I', "KV-cache sharding"},
    {"model.model_config.offset", 'I', "pipeline layer offset"},
    {"model.model_config.emb_dropout_prob", 'H', "0 only"},
    {"model.model_config.checkpoint_name_or_path", 'M', "load_checkpoint when that is empty"},
    {"model.model_config.repetition_penalty", 'I', "predict: csft has no repetition penalty"},
    {"model.model_config.max_decode_length", 'M', "predict.max_new_tokens (theirs counts the prompt too)"},
    {"model.model_config.top_k", 'M', "predict.top_k"},
    {"model.model_config.top_p", 'M', "predict.top_p"},
    {"model.model_config.do_sample", 'M', "predict.do_sample"},
    {"model.model_config.extend_method", 'H', "None only (no RoPE scaling beyond config.json's)"},
    {"model.model_config.scaling_factor", 'H', "1.0 only"},
    {"model.model_config.fine_grain_interleave", 'I', "communication overlap"},
    {"model.model_config.qkv_concat", 'H', "a .ckpt with w_qkv / w_gate_hidden is read in either layout"},
    {"model.model_config.rotary_pct", 'I', "copied from Qwen; not a LlamaConfig argument"},
    {"model.model_config.rotary_emb_base", 'I', "copied from Qwen; not a LlamaConfig argument"},
    {"model.model_config.input_sliced_sig", 'H', "labels are shifted once, within each document"},
    {"model.model_config.pet_config", 'M', "model.model_config.pet_config"},
    {"model.model_config.pet_config.pet_type", 'M', "pet_type: lora"},
    {"model.model_config.pet_config.lora_rank", 'M', "lora_rank (default 8)"},
    {"model.model_config.pet_config.lora_alpha", 'M', "lora_alpha (default 16)"},
    {"model.model_config.pet_config.lora_dropout", 'M', "lora_dropout (default 0.01)"},
    {"model.model_config.pet_config.target_modules", 'M', "target_modules: their regex with re.match semantics "
                                                          "(anchored at the start only), wq/wk/... names accepted"},
    {"model.model_config.pet_config.lora_a_init", 'I', "A starts as PEFT's (Kaiming-uniform), B at zero"},
    {"model.model_config.pet_config.lora_b_init", 'I', "B starts at zero"},
    {"model.model_config.pet_config.*", 'H', "empty only (exclude_layers, freeze_include/exclude)"},
    {"processor.tokenizer.vocab_file", 'M', "vocab_file when the data handler gives none"},
    {"processor.tokenizer.merges_file", 'M', "merges_file when the data handler gives none"},
    {"processor.*", 'I', "tokenizer class and special tokens come from the tokenizer files"},
    {"metric.*", 'I', "csft eval reports loss and perplexity"},
    {"moe_config.*", 'I', "no mixture of experts"},
    {"monitor_config.*", 'I', "MindSpore monitors"},
};
enum { N_RULES = sizeof rules / sizeof rules[0] };

/* '*' matches within one component; a final '*' matches the rest (any depth). */
static int glob_match(const char *pat, const char *s) {
    if (!*pat) return !*s;
    if (*pat == '*' && !pat[1]) return 1;
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (glob_match(pat + 1, t)) return 1;
            if (!*t || *t == '.') return 0;
        }
    }
    return *pat == *s && glob_match(pat + 1, s + 1);
}

static const struct rule *rule_of(const char *path) {
    for (int i = 0; i < N_RULES; i++)
        if (glob_match(rules[i].pat, path)) return &rules[i];
    return NULL;
}

int config_mf_key_status(const char *their_path) {
    const struct rule *r = rule_of(their_path);
    return r ? r->status : 0;
}

void config_mf_print_markdown(FILE *f) {
    fprintf(f, "| key (`*` = any name) | status | in csft |\n|---|---|---|\n");
    for (int i = 0; i < N_RULES; i++) {
        fprintf(f, "| `%s` | %s | ", rules[i].pat,
                rules[i].status == 'H' ? "honoured" : rules[i].status == 'M' ? "mapped" : "ignored");
        for (const char *s = rules[i].how; *s; s++) {
            if (*s == '|') fputc('\\', f);
            fputc(*s, f);
        }
        fprintf(f, " |\n");
    }
}

/* ---------------------------------------------------------------- the document */

struct keylist {
    char **path;
    unsigned *files; /* bit i: found in file i */
    int n;
};

struct tr {
    yaml_document_t doc;
    const char *file;
    const struct mf_cli *cli;
    struct mf_translation *out;
    char *ignored_buf;
    size_t ignored_len;
    FILE *ignored;
    int n_ignored;
    int strict; /* a run (not config convert): missing data is an error */
};

static const char *sval(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}
static int is_null(const yaml_node_t *n) {
    const char *s = sval(n);
    if (!n) return 1;
    if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    return !*s || !strcmp(s, "~") || !strcasecmp(s, "null");
}
static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static yaml_node_t *child(struct tr *t, yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = sval(yaml_document_get_node(&t->doc, p->key));
        if (k && !strcmp(k, key)) return yaml_document_get_node(&t->doc, p->value);
    }
    return NULL;
}

/* Node at a dotted path from the root (keys without dots only). */
static yaml_node_t *at(struct tr *t, const char *path) {
    yaml_node_t *n = yaml_document_get_root_node(&t->doc);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf, *dot; n && s; s = dot ? dot + 1 : NULL) {
        dot = strchr(s, '.');
        if (dot) *dot = 0;
        n = child(t, n, s);
    }
    return n;
}

static int truthy(const char *s) { return s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1")); }
static int falsy(const char *s) { return s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0")); }

static int num(const yaml_node_t *n, double *v) {
    const char *s = sval(n);
    if (!s || !*s) return -1;
    char *end;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static int fail(struct tr *t, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct tr *t, const yaml_node_t *n, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("%s:%d: %s", t->file, line_of(n), msg);
}

static void push(char ***v, int *n, char *s) {
    *v = xrealloc(*v, sizeof **v * (size_t)(*n + 1));
    (*v)[(*n)++] = s;
}

/* A YAML double-quoted string. */
static char *quote(const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
    fclose(f);
    return buf;
}

/* Records native = value (YAML text), from their key (node may be NULL: a default or a flag). */
static void emit(struct tr *t, const char *their, const yaml_node_t *n, const char *native, const char *value) {
    push(&t->out->sets, &t->out->n_sets, xasprintf("%s=%s", native, value));
    char where[64];
    if (n) snprintf(where, sizeof where, "line %d", line_of(n));
    else snprintf(where, sizeof where, "%s", their[0] == '-' ? "command line" : "their default");
    push(&t->out->lines, &t->out->n_lines, xasprintf("%s (%s) -> %s: %s", their, where, native, value));
}
static void emit_str(struct tr *t, const char *their, const yaml_node_t *n, const char *native, const char *s) {
    char *q = quote(s);
    emit(t, their, n, native, q);
    free(q);
}
static void emit_num(struct tr *t, const char *their, const yaml_node_t *n, const char *native, double v) {
    char buf[64];
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, sizeof buf, "%.0f", v);
    else snprintf(buf, sizeof buf, "%.17g", v);
    emit(t, their, n, native, buf);
}
static void note(struct tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct tr *t, const char *fmt, ...) {
    char *s;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = xstrdup("?");
    va_end(ap);
    push(&t->out->notes, &t->out->n_notes, s);
}

/* Every leaf key of a document (lists of {type: X} named by type), into kl. */
static void collect(yaml_document_t *doc, yaml_node_t *n, const char *path, int file, struct keylist *kl, int depth) {
    if (!n || depth > 12) return;
    int leaf = 1;
    if (n->type == YAML_MAPPING_NODE) {
        leaf = 0;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const char *k = sval(yaml_document_get_node(doc, p->key));
            if (!k) continue;
            char *sub = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
            collect(doc, yaml_document_get_node(doc, p->value), sub, file, kl, depth + 1);
            free(sub);
        }
    } else if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            const char *ty = NULL;
            if (e->type == YAML_MAPPING_NODE)
                for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
                    const char *k = sval(yaml_document_get_node(doc, p->key));
                    if (k && !strcmp(k, "type")) ty = sval(yaml_document_get_node(doc, p->value));
                }
            if (!ty) continue;
            leaf = 0;
            char *sub = xasprintf("%s.%s", path, ty);
            collect(doc, NULL, sub, file, kl, depth + 1); /* the entry itself */
            for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
                const char *k = sval(yaml_document_get_node(doc, p->key));
                if (!k || !strcmp(k, "type")) continue;
                char *sub2 = xasprintf("%s.%s", sub, k);
                collect(doc, yaml_document_get_node(doc, p->value), sub2, file, kl, depth + 1);
                free(sub2);
            }
            free(sub);
        }
    }
    if (!leaf || !*path) return;
    for (int i = 0; i < kl->n; i++)
        if (!strcmp(kl->path[i], path)) {
            kl->files[i] |= 1u << file;
            return;
        }
    kl->path = xrealloc(kl->path, sizeof *kl->path * (size_t)(kl->n + 1));
    kl->files = xrealloc(kl->files, sizeof *kl->files * (size_t)(kl->n + 1));
    kl->path[kl->n] = xstrdup(path);
    kl->files[kl->n++] = 1u << file;
}

int config_mf_print_keys_markdown(const char *const *paths, const char *const *labels, int n, FILE *f) {
    struct keylist kl = {0};
    int rc = 0;
    for (int i = 0; i < n && i < 16 && !rc; i++) {
        size_t len;
        char *text = file_read_all(paths[i], &len);
        if (!text) {
            rc = -1;
            break;
        }
        yaml_parser_t p;
        yaml_document_t doc;
        yaml_parser_initialize(&p);
        yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
        if (yaml_parser_load(&p, &doc)) {
            collect(&doc, yaml_document_get_root_node(&doc), "", i, &kl, 0);
            yaml_document_delete(&doc);
        } else {
            rc = err_set("%s: YAML syntax error", paths[i]);
        }
        yaml_parser_delete(&p);
        free(text);
    }
    fprintf(f, "| key | in | status | in csft |\n|---|---|---|---|\n");
    for (int i = 0; i < kl.n; i++) {
        const struct rule *r = rule_of(kl.path[i]);
        fprintf(f, "| `%s` | ", kl.path[i]);
        for (int k = 0, first = 1; k < n; k++)
            if (kl.files[i] & (1u << k)) fprintf(f, "%s%s", first ? "" : ", ", labels[k]), first = 0;
        fprintf(f, " | %s | ", !r ? "**unknown**" : r->status == 'H' ? "honoured" : r->status == 'M' ? "mapped" : "ignored");
        for (const char *c = r ? r->how : "not covered by the rule table"; *c; c++) {
            if (*c == '|') fputc('\\', f);
            fputc(*c, f);
        }
        fprintf(f, " |\n");
        if (!r) rc = rc ? rc : err_set("%s: key %s is not covered by the rule table", paths[0], kl.path[i]);
        free(kl.path[i]);
    }
    free(kl.path), free(kl.files);
    return rc;
}

/* ---------------------------------------------------------------- detection */

int config_mf_detect(const char *path) {
    size_t len;
    char *text = file_read_all(path, &len);
    if (!text) {
        err_clear();
        return 0;
    }
    struct tr t = {.file = path};
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&p, &t.doc);
    yaml_parser_delete(&p);
    free(text);
    if (!ok) return 0;
    static const char *const marks[] = {"trainer", "runner_wrapper", "context", "callbacks",
                                        "train_dataset.data_loader", "model.model_config.type", "train_dataset_task"};
    int found = 0;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && !found; i++) found = at(&t, marks[i]) != NULL;
    yaml_document_delete(&t.doc);
    return found;
}

/* ---------------------------------------------------------------- walking every key */

static int n_comps(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '.';
    return n;
}

/* True if a rule other than an ignore names a key below path (glob components). */
static int has_live_descendant(const char *path) {
    int k = n_comps(path);
    for (int i = 0; i < N_RULES; i++) {
        if (rules[i].status == 'I' || n_comps(rules[i].pat) <= k) continue;
        char pre[200];
        snprintf(pre, sizeof pre, "%s", rules[i].pat);
        char *p = pre;
        for (int c = 0; c < k && p; c++) {
            p = strchr(p, '.');
            if (p && c + 1 < k) p++;
        }
        if (p) *p = 0;
        if (glob_match(pre, path)) return 1;
    }
    return 0;
}

/* A section ignored as a whole: a rule "<path>.*" ignores it and nothing below is used. */
static int section_ignored(const char *path) {
    char probe[300];
    snprintf(probe, sizeof probe, "%s.x", path);
    const struct rule *r = rule_of(probe);
    return r && r->status == 'I' && !has_live_descendant(path);
}

static void add_ignored(struct tr *t, const char *what) {
    fprintf(t->ignored, "%s%s", t->n_ignored++ ? ", " : "", what);
}

/* Collects the ignored keys for the one warning line (a section ignored as a whole is named
 * once) and notes the keys no rule covers. */
static void classify(struct tr *t, yaml_node_t *n, const char *path, int depth) {
    if (depth > 12) return;
    if (*path && (n->type == YAML_MAPPING_NODE || n->type == YAML_SEQUENCE_NODE) && section_ignored(path)) {
        char *s = xasprintf("%s.*", path);
        add_ignored(t, s);
        free(s);
        return;
    }
    const struct rule *r = *path ? rule_of(path) : NULL;
    if (n->type == YAML_MAPPING_NODE) {
        if (r && r->status == 'I' && !has_live_descendant(path)) {
            add_ignored(t, path);
            return;
        }
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            const char *k = sval(yaml_document_get_node(&t->doc, p->key));
            if (!k) continue;
            char *sub = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
            classify(t, yaml_document_get_node(&t->doc, p->value), sub, depth + 1);
            free(sub);
        }
        return;
    }
    if (n->type == YAML_SEQUENCE_NODE) { /* lists of {type: X, ...}: named by type */
        int typed = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(&t->doc, *it);
            const char *ty = sval(child(t, e, "type"));
            if (!ty) continue;
            typed = 1;
            char *sub = xasprintf("%s.%s", path, ty);
            const struct rule *re = rule_of(sub);
            if (!re) push(&t->out->notes, &t->out->n_notes, xasprintf("%s: type %s is not known to csft; ignored", path, ty));
            else if (re->status == 'I') add_ignored(t, sub);
            for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top && re && re->status != 'I'; p++) {
                const char *k = sval(yaml_document_get_node(&t->doc, p->key));
                if (!k || !strcmp(k, "type")) continue;
                char *sub2 = xasprintf("%s.%s", sub, k);
                classify(t, yaml_document_get_node(&t->doc, p->value), sub2, depth + 1);
                free(sub2);
            }
            free(sub);
        }
        if (typed) return;
    }
    if (!r) push(&t->out->notes, &t->out->n_notes, xasprintf("%s: not a MindSpore Transformers key csft knows; ignored", path));
    else if (r->status == 'I') add_ignored(t, path);
}

/* ---------------------------------------------------------------- sections */

static int model_section(struct tr *t, int *lora) {
    yaml_node_t *mc = at(t, "model.model_config"), *n;
    const char *s;
    *lora = 0;
    if ((s = sval(child(t, mc, "type"))) && strcmp(s, "LlamaConfig"))
        note(t, "model.model_config.type %s: read as LlamaConfig (csft's decoder covers Qwen2 and Llama)", s);
    if ((s = sval(at(t, "model.arch.type"))) && strcmp(s, "LlamaForCausalLM"))
        note(t, "model.arch.type %s: read as LlamaForCausalLM", s);
    if ((n = child(t, mc, "num_layers")) && !is_null(n)) emit(t, "model.model_config.num_layers", n, "model.model_config.num_layers", sval(n));
    if ((s = sval(n = child(t, mc, "extend_method"))) && strcmp(s, "None"))
        return fail(t, n, "model.model_config.extend_method: %s RoPE scaling is not supported (None only; csft takes "
                          "RoPE scaling from config.json)", s);
    double v;
    if ((n = child(t, mc, "emb_dropout_prob")) && !num(n, &v) && v != 0)
        return fail(t, n, "model.model_config.emb_dropout_prob: %g is not supported (0 only)", v);
    if ((s = sval(n = child(t, mc, "top_k")))) emit(t, "model.model_config.top_k", n, "predict.top_k", s);
    if ((n = child(t, mc, "top_p")) && !num(n, &v) && v > 0 && v <= 1) emit(t, "model.model_config.top_p", n, "predict.top_p", sval(n));
    if ((s = sval(n = child(t, mc, "do_sample")))) emit(t, "model.model_config.do_sample", n, "predict.do_sample", truthy(s) ? "true" : "false");
    if ((n = child(t, mc, "max_decode_length")) && !num(n, &v) && v >= 1)
        emit(t, "model.model_config.max_decode_length", n, "predict.max_new_tokens", sval(n));
    yaml_node_t *pet = child(t, mc, "pet_config");
    if (pet && !is_null(pet)) {
        const char *ty = sval(n = child(t, pet, "pet_type"));
        if (!ty || strcasecmp(ty, "lora")) return fail(t, n ? n : pet, "pet_config.pet_type: %s is not supported (lora only)", ty ? ty : "missing");
        *lora = 1;
        emit(t, "model.model_config.pet_config.pet_type", n, "model.model_config.pet_config.pet_type", "lora");
        static const char *const ks[][2] = {{"lora_rank", "8"}, {"lora_alpha", "16"}, {"lora_dropout", "0.01"}};
        for (int i = 0; i < 3; i++) {
            char their[96], native[96];
            snprintf(their, sizeof their, "model.model_config.pet_config.%s", ks[i][0]);
            snprintf(native, sizeof native, "model.model_config.pet_config.%s", ks[i][0]);
            n = child(t, pet, ks[i][0]);
            emit(t, their, n, native, n && sval(n) ? sval(n) : ks[i][1]);
        }
        n = child(t, pet, "target_modules");
        if (sval(n)) { /* re.match: anchored at the start only; csft's regex must match the whole name */
            char *re = xasprintf("(?:%s).*", sval(n));
            emit_str(t, "model.model_config.pet_config.target_modules", n, "model.model_config.pet_config.target_modules", re);
            free(re);
        } else if (n && n->type == YAML_SEQUENCE_NODE) {
            return fail(t, n, "pet_config.target_modules: their configs give one regex string; a list is not a "
                              "MindSpore Transformers form");
        } else {
            return fail(t, pet, "pet_config.target_modules is missing (MindSpore Transformers needs it)");
        }
        static const char *const unsup[] = {"exclude_layers", "freeze_include", "freeze_exclude"};
        for (int i = 0; i < 3; i++)
            if ((n = child(t, pet, unsup[i])) && !is_null(n) &&
                !(n->type == YAML_SEQUENCE_NODE && n->data.sequence.items.top == n->data.sequence.items.start))
                return fail(t, n, "pet_config.%s is not supported yet", unsup[i]);
    }
    if ((s = sval(n = child(t, mc, "param_init_type"))))
        emit(t, "model.model_config.param_init_type", n, "model.model_config.param_init_type",
             !strcmp(s, "bfloat16") && *lora ? "bfloat16" : "float32");
    if ((s = sval(child(t, mc, "compute_dtype"))) && strcmp(s, "float32"))
        note(t, "model.model_config.compute_dtype %s: csft computes in float32 (bfloat16 matmuls are not emulated)", s);
    return 0;
}

/* Shape keys: checked against config.json, or the shape of a .ckpt without one. */
static int shape_section(struct tr *t, const char *load) {
    yaml_node_t *mc = at(t, "model.model_config");
    static const char *const map[][2] = {{"hidden_size", "hidden_size"},
                                         {"num_heads", "num_attention_heads"},
                                         {"n_kv_heads", "num_key_value_heads"},
                                         {"vocab_size", "vocab_size"},
                                         {"intermediate_size", "intermediate_size"},
                                         {"rms_norm_eps", "rms_norm_eps"},
                                         {"theta", "rope_theta"},
                                         {"tie_word_embeddings", "tie_word_embeddings"},
                                         {"num_layers", "num_hidden_layers"}};
    char *cj_path = NULL;
    if (load && *load) {
        char *dir = ckpt_is_checkpoint(load) ? ckpt_config_dir(load) : xstrdup(load);
        cj_path = path_join(dir, "config.json");
        free(dir);
    }
    char *text = cj_path && file_exists(cj_path) ? file_read_all(cj_path, NULL) : NULL;
    cJSON *cj = text ? cJSON_Parse(text) : NULL;
    free(text);
    int rc = 0;
    if (cj) {
        for (size_t i = 0; i < sizeof map / sizeof map[0] && !rc; i++) {
            yaml_node_t *n = child(t, mc, map[i][0]);
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(cj, map[i][1]);
            double v;
            if (!n || is_null(n)) continue;
            if (!strcmp(map[i][0], "tie_word_embeddings")) {
                int mine = truthy(sval(n)), theirs = cJSON_IsTrue(h);
                if (mine != theirs)
                    rc = fail(t, n, "model.model_config.tie_word_embeddings = %s, but %s has tie_word_embeddings = %s",
                              sval(n), cj_path, theirs ? "true" : "false");
                continue;
            }
            if (num(n, &v)) continue;
            if (!strcmp(map[i][0], "num_layers")) { /* the first N layers are kept */
                if (cJSON_IsNumber(h) && v > h->valuedouble)
                    rc = fail(t, n, "model.model_config.num_layers = %g, but %s has only num_hidden_layers = %g", v,
                              cj_path, h->valuedouble);
                continue;
            }
            if (!cJSON_IsNumber(h)) continue;
            double d = h->valuedouble;
            int same = !strcmp(map[i][0], "rms_norm_eps") ? fabs(v - d) <= 1e-6 * fabs(d) : v == d;
            if (!same)
                rc = fail(t, n, "model.model_config.%s = %s in %s, but %s has %s = %.10g (set the model_config shape "
                                "keys to the model's, or point load_checkpoint at the right model)",
                          map[i][0], sval(n), t->file, cj_path, map[i][1], d);
        }
        yaml_node_t *b = child(t, mc, "qkv_has_bias");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cj, "model_type"), *ab = cJSON_GetObjectItemCaseSensitive(cj, "attention_bias");
        int hf_bias = (cJSON_IsString(mt) && !strcmp(mt->valuestring, "qwen2")) || cJSON_IsTrue(ab);
        if (!rc && b && (truthy(sval(b)) != hf_bias))
            rc = fail(t, b, "model.model_config.qkv_has_bias = %s, but %s describes a model %s q/k/v biases", sval(b),
                      cj_path, hf_bias ? "with" : "without");
    } else if (load && *load && ckpt_is_checkpoint(load)) {
        /* no config.json beside the .ckpt: their model_config is the shape */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        yaml_node_t *b = child(t, mc, "qkv_has_bias");
        fprintf(f, "{model_type: %s", b && truthy(sval(b)) ? "qwen2" : "llama");
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            yaml_node_t *n = child(t, mc, map[i][0]);
            if (n && sval(n) && !is_null(n)) fprintf(f, ", %s: \"%s\"", map[i][1], sval(n));
        }
        fputc('}', f);
        fclose(f);
        emit(t, "model.model_config (shape keys)", mc, "model.model_config.hf_config", buf);
        free(buf);
    } else if (load && *load) {
        note(t, "model_config shape keys not checked: %s has no config.json (yet)", load);
    }
    cJSON_Delete(cj);
    free(cj_path);
    return rc;
}

static int optim_section(struct tr *t) {
    yaml_node_t *opt = at(t, "optimizer"), *ls = at(t, "lr_schedule"), *n;
    const char *s;
    if (opt) {
        if ((s = sval(n = child(t, opt, "type")))) {
            if (strcmp(s, "AdamW") && strcmp(s, "FusedAdamWeightDecay"))
                return fail(t, n, "optimizer.type %s is not supported (AdamW)", s);
            emit(t, "optimizer.type", n, "optimizer.type", "AdamW");
        }
        /* SpecConfig: a given section is used as written, missing keys take the class defaults */
        n = child(t, opt, "betas");
        if (n && n->type == YAML_SEQUENCE_NODE && n->data.sequence.items.top - n->data.sequence.items.start == 2) {
            const char *b0 = sval(yaml_document_get_node(&t->doc, n->data.sequence.items.start[0])),
                       *b1 = sval(yaml_document_get_node(&t->doc, n->data.sequence.items.start[1]));
            char *v = xasprintf("[%s, %s]", b0 ? b0 : "0.9", b1 ? b1 : "0.999");
            emit(t, "optimizer.betas", n, "optimizer.betas", v);
            free(v);
        } else if (n) return fail(t, n, "optimizer.betas: expected a list of 2 numbers");
        else emit(t, "optimizer.betas", NULL, "optimizer.betas", "[0.9, 0.999]");
        n = child(t, opt, "eps");
        emit(t, "optimizer.eps", n, "optimizer.eps", n && sval(n) ? sval(n) : "1.0e-8");
        n = child(t, opt, "weight_decay");
        emit(t, "optimizer.weight_decay", n, "optimizer.weight_decay", n && sval(n) ? sval(n) : "0.0");
    }
    n = child(t, ls, "learning_rate");
    if (!n || is_null(n)) n = child(t, opt, "learning_rate");
    if (n && sval(n)) emit(t, n == child(t, ls, "learning_rate") ? "lr_schedule.learning_rate" : "optimizer.learning_rate", n, "optimizer.learning_rate", sval(n));
    if (!ls) {
        note(t, "no lr_schedule: a constant learning rate");
        emit(t, "lr_schedule", NULL, "lr_schedule.type", "constant");
        return 0;
    }
    static const char *const types[][2] = {{"CosineWithWarmUpLR", "cosine"},
                                           {"LinearWithWarmUpLR", "linear"},
                                           {"ConstantWarmUpLR", "constant"},
                                           {"WarmUpStableDecayLR", "wsd"},
                                           {"cosine", "cosine"},
                                           {"linear", "linear"},
                                           {"constant", "constant"}};
    s = sval(n = child(t, ls, "type"));
    int found = 0;
    for (size_t i = 0; s && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i][0])) emit(t, "lr_schedule.type", n, "lr_schedule.type", types[i][1]), found = 1;
    if (!found)
        return fail(t, n ? n : ls, "lr_schedule.type %s is not supported (CosineWithWarmUpLR, LinearWithWarmUpLR, "
                                   "ConstantWarmUpLR, WarmUpStableDecayLR)", s ? s : "missing");
    n = child(t, ls, "lr_end");
    emit(t, "lr_schedule.lr_end", n, "lr_schedule.min_lr", n && sval(n) && !is_null(n) ? sval(n) : "0.0");
    double v;
    if ((n = child(t, ls, "warmup_steps")) && !num(n, &v) && v > 0) emit(t, "lr_schedule.warmup_steps", n, "lr_schedule.warmup_steps", sval(n));
    else if ((n = child(t, ls, "warmup_ratio")) && !num(n, &v)) {
        emit(t, "lr_schedule.warmup_ratio", n, "lr_schedule.warmup_ratio", sval(n));
        if (v > 0) note(t, "lr_schedule.warmup_ratio: their warmup is int(total x ratio) steps, csft's ceil(total x ratio)");
    }
    if ((n = child(t, ls, "total_steps")) && !num(n, &v) && v > 0) {
        emit(t, "lr_schedule.total_steps", n, "runner_config.max_steps", sval(n));
        note(t, "lr_schedule.total_steps %g: csft also stops the run after that many steps", v);
    }
    if ((n = child(t, ls, "decay_ratio")) && sval(n)) emit(t, "lr_schedule.decay_ratio", n, "lr_schedule.decay_ratio", sval(n));
    if ((n = child(t, ls, "warmup_lr_init")) && !num(n, &v) && v != 0)
        return fail(t, n, "lr_schedule.warmup_lr_init %g is not supported (csft warms up from 0)", v);
    if ((n = child(t, ls, "num_cycles")) && !num(n, &v) && v != 0.5)
        return fail(t, n, "lr_schedule.num_cycles %g is not supported (0.5: one half cosine)", v);
    return 0;
}

static int wrapper_and_callbacks(struct tr *t) {
    yaml_node_t *w = at(t, "runner_wrapper"), *n;
    if (w) { /* given: as written; class defaults use_clip_grad False, max_grad_norm 1.0 */
        int clip = truthy(sval(child(t, w, "use_clip_grad")));
        n = child(t, w, "max_grad_norm");
        emit(t, "runner_wrapper.use_clip_grad/max_grad_norm", child(t, w, "use_clip_grad"), "max_grad_norm",
             clip ? (n && sval(n) ? sval(n) : "1.0") : "0.0");
        if ((n = child(t, w, "scale_sense")) && !is_null(n)) emit(t, "runner_wrapper.scale_sense", n, "on_nonfinite", "skip");
    } else { /* template: clip at 1.0, dynamic loss scale */
        emit(t, "runner_wrapper", NULL, "max_grad_norm", "1.0");
        emit(t, "runner_wrapper", NULL, "on_nonfinite", "skip");
    }
    yaml_node_t *cb = at(t, "callbacks");
    int have_ckpt = 0;
    if (cb && cb->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = cb->data.sequence.items.start; it < cb->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(&t->doc, *it);
            const char *ty = sval(child(t, e, "type"));
            if (ty && !strcmp(ty, "MFLossMonitor")) {
                n = child(t, e, "per_print_times");
                emit(t, "callbacks.MFLossMonitor.per_print_times", n ? n : e, "logging_steps", n && sval(n) ? sval(n) : "1");
            } else if (ty && !strcmp(ty, "CheckpointMonitor")) {
                have_ckpt = 1;
                n = child(t, e, "save_checkpoint_steps");
                emit(t, "callbacks.CheckpointMonitor.save_checkpoint_steps", n ? n : e, "save_steps", n && sval(n) ? sval(n) : "1");
                n = child(t, e, "keep_checkpoint_max");
                emit(t, "callbacks.CheckpointMonitor.keep_checkpoint_max", n ? n : e, "save_total_limit", n && sval(n) ? sval(n) : "5");
                n = child(t, e, "checkpoint_format");
                const char *f = n && sval(n) ? sval(n) : "ckpt";
                if (strcmp(f, "ckpt") && strcmp(f, "safetensors"))
                    return fail(t, n, "checkpoint_format %s: expected ckpt or safetensors", f);
                emit(t, "callbacks.CheckpointMonitor.checkpoint_format", n ? n : e, "checkpoint_format", f);
                n = child(t, e, "prefix");
                emit_str(t, "callbacks.CheckpointMonitor.prefix", n ? n : e, "checkpoint_prefix", n && sval(n) ? sval(n) : "CKP");
            }
        }
    }
    if (!have_ckpt) {
        emit(t, "callbacks", cb, "save_steps", "0");
        note(t, "no CheckpointMonitor: csft saves only at the end (and on SIGINT/SIGTERM)");
    }
    yaml_node_t *rc = at(t, "recompute_config.recompute");
    int rec = 0;
    if (rc && rc->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = rc->data.sequence.items.start; it < rc->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(&t->doc, *it);
            double v;
            if (e->type == YAML_SEQUENCE_NODE) rec |= e->data.sequence.items.top > e->data.sequence.items.start;
            else if (!num(e, &v) && v > 0) rec = 1;
            else if (truthy(sval(e))) rec = 1;
        }
    } else if (rc) {
        rec = truthy(sval(rc));
    }
    if (rc) emit(t, "recompute_config.recompute", rc, "model.model_config.recompute", rec ? "true" : "false");
    return 0;
}

/* One dataset section (train_dataset / eval_dataset). */
static int dataset_section(struct tr *t, const char *sec, const char *dir_flag, int *have_data) {
    char their[160], native[96];
    yaml_node_t *ds = at(t, sec), *dl = child(t, ds, "data_loader"), *n;
    *have_data = 0;
    if (!ds) return 0;
    const char *type = sval(child(t, dl, "type"));
#define NK(k) (snprintf(native, sizeof native, "%s.%s", sec, k), native)
#define TK(k) (snprintf(their, sizeof their, "%s.%s", sec, k), their)
    yaml_node_t *sh = child(t, dl, "shuffle");
    emit(t, TK("data_loader.shuffle"), sh, NK("shuffle"), sh ? (truthy(sval(sh)) ? "true" : "false") : "true");
    if (type && !strcmp(type, "MindDataset")) {
        n = child(t, dl, "dataset_dir");
        const char *dir = dir_flag ? dir_flag : sval(n);
        if (dir && *dir) {
            char *v = quote(dir), *l = xasprintf("[%s]", v);
            emit(t, dir_flag ? "--train_dataset_dir" : TK("data_loader.dataset_dir"), dir_flag ? NULL : n, NK("data_files"), l);
            free(v), free(l);
            *have_data = 1;
        }
        emit(t, TK("data_loader.type"), child(t, dl, "type"), NK("format"), "tokenized");
        /* their rows hold seq_length + 1 tokens (the model slices input_ids[:-1], labels[1:]) */
        double sl;
        yaml_node_t *m = at(t, "model.model_config.seq_length");
        if (m && !num(m, &sl) && sl >= 1) emit_num(t, "model.model_config.seq_length (+ 1)", m, NK("seq_length"), sl + 1);
        emit(t, TK("data_loader.type"), child(t, dl, "type"), NK("truncation"), "error");
        return 0;
    }
    if (type && strcmp(type, "CommonDataLoader") && strcmp(type, "HFDataLoader"))
        return fail(t, child(t, dl, "type"), "%s.data_loader.type %s is not supported (MindDataset, CommonDataLoader, "
                                             "HFDataLoader)", sec, type);
    /* the data */
    const char *path = sval(n = child(t, dl, "path"));
    yaml_node_t *dfn = child(t, dl, "data_files");
    if (dir_flag) {
        char *v = quote(dir_flag), *l = xasprintf("[%s]", v);
        emit(t, "--train_dataset_dir", NULL, NK("data_files"), l);
        free(v), free(l);
        *have_data = 1;
    } else if (dfn && !is_null(dfn)) {
        if (sval(dfn)) {
            char *v = quote(sval(dfn)), *l = xasprintf("[%s]", v);
            emit(t, TK("data_loader.data_files"), dfn, NK("data_files"), l);
            free(v), free(l);
        } else if (dfn->type == YAML_SEQUENCE_NODE) {
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            fputc('[', f);
            for (yaml_node_item_t *it = dfn->data.sequence.items.start; it < dfn->data.sequence.items.top; it++) {
                char *q = quote(sval(yaml_document_get_node(&t->doc, *it)) ? sval(yaml_document_get_node(&t->doc, *it)) : "");
                fprintf(f, "%s%s", it > dfn->data.sequence.items.start ? ", " : "", q);
                free(q);
            }
            fputc(']', f);
            fclose(f);
            emit(t, TK("data_loader.data_files"), dfn, NK("data_files"), buf);
            free(buf);
        } else return fail(t, dfn, "%s.data_loader.data_files: expected a path or a list of paths", sec);
        *have_data = 1;
    } else if (path && *path) {
        if (!file_exists(path) && !dir_exists(path) && !t->strict) {
            note(t, "%s.data_loader.path '%s' is not a local file or folder (a Hugging Face Hub dataset id?): csft does "
                    "not download; give the data with --train_dataset_dir DIR_OR_FILE (or path: json + data_files)",
                 sec, path);
            goto handlers;
        }
        if (!file_exists(path) && !dir_exists(path))
            return fail(t, n, "%s.data_loader.path '%s' is not a local file or folder (a Hugging Face Hub dataset id?): "
                              "csft does not download; fetch it (e.g. huggingface-cli download --repo-type dataset %s "
                              "--local-dir DIR) and give the folder or file with --train_dataset_dir, or set path: json "
                              "+ data_files", sec, path, path);
        char *v = quote(path), *l = xasprintf("[%s]", v);
        emit(t, TK("data_loader.path"), n, NK("data_files"), l);
        free(v), free(l);
        *have_data = 1;
    }
handlers:;
    /* handlers and packing */
    int alpaca = 0, pack = 0;
    const char *vocab = NULL, *merges = NULL;
    yaml_node_t *vocab_n = NULL, *merges_n = NULL, *seq_n = NULL;
    yaml_node_t *hl = child(t, dl, "handler");
    if (hl && hl->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = hl->data.sequence.items.start; it < hl->data.sequence.items.top; it++) {
            yaml_node_t *h = yaml_document_get_node(&t->doc, *it);
            const char *ht = sval(child(t, h, "type"));
            if (ht && !strcmp(ht, "AlpacaInstructDataHandler")) {
                alpaca = 1;
                yaml_node_t *tk = child(t, h, "tokenizer");
                if (sval(n = child(t, tk, "vocab_file"))) vocab = sval(n), vocab_n = n;
                if (sval(n = child(t, tk, "merges_file"))) merges = sval(n), merges_n = n;
                if (sval(n = child(t, h, "seq_length"))) seq_n = n;
            } else if (ht && !strcmp(ht, "PackingHandler")) {
                const char *ps = sval(child(t, h, "pack_strategy"));
                if (ps && strcmp(ps, "pack"))
                    return fail(t, child(t, h, "pack_strategy"), "PackingHandler pack_strategy %s is not supported (pack)", ps);
                pack = 1;
                if (!seq_n && sval(n = child(t, h, "seq_length"))) seq_n = n;
            } else {
                return fail(t, h, "%s.data_loader.handler: %s is not supported yet (AlpacaInstructDataHandler, "
                                  "PackingHandler)", sec, ht ? ht : "an entry without type");
            }
        }
    }
    const char *pk = sval(n = child(t, dl, "packing"));
    if (pk && !strcmp(pk, "pack")) pack = 1;
    else if (pk && strcmp(pk, "None") && !is_null(n))
        return fail(t, n, "%s.data_loader.packing: %s is not supported (pack; truncate splits documents across rows, "
                          "which csft never does)", sec, pk);
    if (alpaca) emit(t, TK("data_loader.handler.AlpacaInstructDataHandler"), hl, NK("format"), "mindformers_alpaca");
    if (pack) {
        emit(t, TK("data_loader.packing / PackingHandler"), n ? n : hl, NK("packing"), "true");
        emit(t, TK("data_loader.packing / PackingHandler"), n ? n : hl, NK("pack_strategy"), "pack");
        emit(t, TK("data_loader.packing / PackingHandler"), n ? n : hl, NK("truncation"), "drop");
    }
    if (!vocab) { /* the processor section of their older configs */
        if (sval(n = at(t, "processor.tokenizer.vocab_file"))) vocab = sval(n), vocab_n = n;
        if (sval(n = at(t, "processor.tokenizer.merges_file"))) merges = sval(n), merges_n = n;
    }
    if (vocab && merges && *vocab && *merges) {
        emit_str(t, TK("...tokenizer.vocab_file"), vocab_n, NK("vocab_file"), vocab);
        emit_str(t, TK("...tokenizer.merges_file"), merges_n, NK("merges_file"), merges);
    }
    if (!seq_n) seq_n = at(t, "model.model_config.seq_length");
    if (seq_n && sval(seq_n)) emit(t, TK("...seq_length"), seq_n, NK("seq_length"), sval(seq_n));
    return 0;
#undef NK
#undef TK
}

/* ---------------------------------------------------------------- the parallel layout */

/* The one place where their device layout becomes csft's: model_parallel is csft's tensor
 * parallelism; pipeline and context parallelism are folded into data parallelism (csft does not
 * split the model that way yet), and the global batch is kept with gradient accumulation. */
static int parallel_layout(struct tr *t, int world) {
    const char *up = t->cli->use_parallel ? t->cli->use_parallel : sval(at(t, "use_parallel"));
    int use_parallel = up ? truthy(up) : 0;
    yaml_node_t *pc = at(t, "parallel_config");
    double dp = 1, mp = 1, pp = 1, cp = 1, mbn = 1, il = 1, bs = 1, ga = 1;
    num(child(t, pc, "data_parallel"), &dp), num(child(t, pc, "model_parallel"), &mp);
    num(child(t, pc, "pipeline_stage"), &pp), num(child(t, pc, "context_parallel"), &cp);
    num(child(t, pc, "micro_batch_num"), &mbn), num(at(t, "micro_batch_interleave_num"), &il);
    if (num(at(t, "runner_config.batch_size"), &bs) && num(at(t, "train_dataset.batch_size"), &bs)) bs = 1;
    num(at(t, "runner_config.gradient_accumulation_steps"), &ga);
    const double v[] = {dp, mp, pp, cp, mbn, il, bs, ga};
    for (int i = 0; i < 8; i++)
        if (!(v[i] >= 1 && v[i] <= 1048576) || v[i] != floor(v[i]))
            return fail(t, pc ? pc : at(t, "runner_config"), "parallel_config / batch sizes must be whole numbers from 1 to "
                                                               "1048576 (found %g)", v[i]);
    double global, devices;
    char how[200];
    if (!use_parallel) {
        devices = 1, global = bs * ga;
        snprintf(how, sizeof how, "batch_size %g x gradient_accumulation_steps %g (use_parallel False: one device)", bs, ga);
    } else if (pp > 1) {
        devices = dp * mp * pp * cp, global = bs * dp * mbn * il;
        snprintf(how, sizeof how, "batch_size %g x data_parallel %g x micro_batch_num %g x micro_batch_interleave_num %g",
                 bs, dp, mbn, il);
    } else {
        devices = dp * mp * pp * cp, global = bs * dp * il * ga;
        snprintf(how, sizeof how, "batch_size %g x data_parallel %g x micro_batch_interleave_num %g x "
                                  "gradient_accumulation_steps %g", bs, dp, il, ga);
    }
    if (devices > 1048576 || global > 1e12) return fail(t, pc, "parallel_config: %g devices / a global batch of %g is too large", devices, global);
    int procs = world > 0 ? world : (int)devices;
    /* model_parallel: csft's tensor parallelism splits each layer over tp ranks of a group */
    int tp = use_parallel && mp > 1 ? (int)mp : 1;
    if (procs % tp)
        return fail(t, pc, "parallel_config.model_parallel %d: the %d processes must be a multiple of it (mpirun -np = "
                           "data_parallel x model_parallel)", tp, procs);
    int dpn = procs / tp;
    double acc = global / (bs * dpn);
    if (acc < 1 || acc != floor(acc))
        return fail(t, pc ? pc : at(t, "runner_config"),
                    "their global batch is %g sequences (%s), which %d process%s of batch_size %g cannot make with "
                    "whole gradient-accumulation steps; launch a number of processes that divides %g",
                    global, how, dpn, dpn == 1 ? "" : "es", bs, global / bs);
    emit_num(t, "use_parallel / parallel_config (layout)", pc, "parallel_config.data_parallel", dpn);
    if (tp > 1) emit_num(t, "parallel_config.model_parallel", child(t, pc, "model_parallel"), "parallel_config.model_parallel", tp);
    emit_num(t, "global batch (layout)", pc, "runner_config.gradient_accumulation_steps", acc);
    emit_num(t, "runner_config.batch_size", at(t, "runner_config.batch_size"), "runner_config.batch_size", bs);
    const char *po = sval(at(t, "parallel.enable_parallel_optimizer"));
    emit(t, "parallel.enable_parallel_optimizer", at(t, "parallel.enable_parallel_optimizer"), "parallel_config.zero_stage",
         use_parallel && truthy(po) && procs > 1 ? "1" : "0");
    if (use_parallel && (pp > 1 || cp > 1 || procs != devices))
        note(t, "parallel layout: their run is data_parallel %g x model_parallel %g x pipeline_stage %g x "
                "context_parallel %g = %g devices with a global batch of %g sequences (%s); csft does not split the model "
                "%s, so this run is %d data-parallel process%s %s, batch_size %g x gradient_accumulation_steps %g: the "
                "same %g sequences per optimizer step",
             dp, mp, pp, cp, devices, global, how,
             pp > 1 ? "over pipeline stages yet" : cp > 1 ? "over the sequence yet" : "differently", dpn,
             dpn == 1 ? "" : "es", tp > 1 ? "each a tensor-parallel group of model_parallel ranks" : "each holding the whole model",
             bs, acc, global);
    return 0;
}

/* ---------------------------------------------------------------- the translation */

int config_mf_translate(const char *path, const struct mf_cli *cli, int world, struct mf_translation *out) {
    memset(out, 0, sizeof *out);
    static const struct mf_cli none = {0};
    struct tr t = {.file = path, .cli = cli ? cli : &none, .out = out, .strict = cli && cli->strict};
    size_t len;
    char *text = file_read_all(path, &len);
    if (!text) return -1;
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&p, &t.doc);
    if (!ok) {
        err_set("%s:%d: YAML syntax error: %s", path, (int)p.problem_mark.line + 1, p.problem ? p.problem : "?");
        yaml_parser_delete(&p);
        free(text);
        return -1;
    }
    yaml_parser_delete(&p);
    free(text);
    t.ignored = open_memstream(&t.ignored_buf, &t.ignored_len);
    int rc = 0, lora = 0, have_train = 0, have_eval = 0;
    yaml_node_t *n;
    const char *s;
    const struct mf_cli *c = t.cli;
    /* run level */
    if ((n = at(&t, "seed")) && sval(n)) emit(&t, "seed", n, "seed", sval(n));
    if (c->output_dir) emit_str(&t, "--output_dir", NULL, "output_dir", c->output_dir);
    else if ((s = sval(n = at(&t, "output_dir")))) emit_str(&t, "output_dir", n, "output_dir", s);
    const char *load = c->load_checkpoint ? c->load_checkpoint : sval(n = at(&t, "load_checkpoint"));
    if (!load || !*load) load = sval(n = at(&t, "model.model_config.checkpoint_name_or_path"));
    if (load && *load) emit_str(&t, c->load_checkpoint ? "--load_checkpoint" : "load_checkpoint", c->load_checkpoint ? NULL : n, "load_checkpoint", load);
    const char *rt = c->resume_training ? c->resume_training : sval(n = at(&t, "resume_training"));
    if (rt && !falsy(rt) && (c->resume_training || !is_null(n))) {
        emit(&t, c->resume_training ? "--resume_training" : "resume_training", c->resume_training ? NULL : n, "resume_training", "true");
        if (!truthy(rt)) note(&t, "resume_training %s: csft resumes from its own newest checkpoint in output_dir", rt);
    }
    const char *mode = c->run_mode ? c->run_mode : sval(n = at(&t, "run_mode"));
    if (mode) {
        /* their train and finetune both train on the labels the data handler makes (csft's train
         * would put the loss on every token) */
        const char *m = !strcmp(mode, "predict_with_train_model") ? "predict" : !strcmp(mode, "train") ? "finetune" : mode;
        if (!strcmp(mode, "train")) note(&t, "run_mode train: trained like finetune, on the labels their data handler makes");
        if (strcmp(m, "finetune") && strcmp(m, "train") && strcmp(m, "predict") && strcmp(m, "eval"))
            rc = err_set("%s: run_mode %s is not supported (finetune, train, predict, eval)", c->run_mode ? "--run_mode" : path, mode);
        else emit(&t, c->run_mode ? "--run_mode" : "run_mode", c->run_mode ? NULL : n, "run_mode", m);
        if (!strcmp(m, "predict")) t.strict = 0; /* generation reads no training data */
    }
    if (c->register_path) note(&t, "--register_path %s: accepted and ignored (csft's models are built in)", c->register_path);
    if (c->predict_data) /* run_mindformer.py --predict_data: a text, or a file of prompts */
        emit_str(&t, "--predict_data", NULL, file_exists(c->predict_data) ? "predict.input_file" : "predict.prompt", c->predict_data);
    if (!rc && (s = sval(n = at(&t, "trainer.type"))) && strcmp(s, "CausalLanguageModelingTrainer"))
        note(&t, "trainer.type %s: csft runs its causal-LM trainer", s);
    if (!rc) rc = model_section(&t, &lora);
    if (!rc) rc = shape_section(&t, load);
    if (!rc) rc = optim_section(&t);
    if (!rc && (n = at(&t, "runner_config.epochs")) && sval(n)) emit(&t, "runner_config.epochs", n, "runner_config.epochs", sval(n));
    if (!rc) rc = wrapper_and_callbacks(&t);
    if (!rc) rc = parallel_layout(&t, world);
    if (!rc) rc = dataset_section(&t, "train_dataset", c->train_dataset_dir, &have_train);
    /* evaluation: only when do_eval and the eval data is given */
    int do_eval = truthy(sval(at(&t, "do_eval")));
    if (!rc && do_eval) rc = dataset_section(&t, "eval_dataset", NULL, &have_eval);
    double ev;
    if (!rc && do_eval && have_eval && (n = at(&t, "eval_step_interval")) && !num(n, &ev))
        emit_num(&t, "eval_step_interval", n, "eval_steps", ev > 0 ? ev : 0);
    if (!rc && (n = at(&t, "train_dataset.repeat")) && !num(n, &ev) && ev != 1)
        rc = fail(&t, n, "train_dataset.repeat %g is not supported (1; use runner_config.epochs)", ev);
    if (!rc) classify(&t, yaml_document_get_root_node(&t.doc), "", 0);
    fclose(t.ignored);
    out->ignored = t.ignored_buf ? t.ignored_buf : xstrdup("");
    yaml_document_delete(&t.doc);
    if (rc) config_mf_translation_free(out);
    return rc;
}

void config_mf_translation_free(struct mf_translation *t) {
    for (int i = 0; i < t->n_sets; i++) free(t->sets[i]);
    for (int i = 0; i < t->n_lines; i++) free(t->lines[i]);
    for (int i = 0; i < t->n_notes; i++) free(t->notes[i]);
    free(t->sets), free(t->lines), free(t->notes), free(t->ignored);
    memset(t, 0, sizeof *t);
}

void config_mf_print(const struct mf_translation *t, const char *path, FILE *f) {
    fprintf(f, "%s: MindSpore Transformers config, translated (docs/mindformers.md):\n", path);
    for (int i = 0; i < t->n_lines; i++) fprintf(f, "  %s\n", t->lines[i]);
    for (int i = 0; i < t->n_notes; i++) fprintf(f, "note: %s\n", t->notes[i]);
    if (t->ignored && *t->ignored) fprintf(f, "warning: MindSpore-only settings ignored (no effect on csft's math): %s\n", t->ignored);
}

char *config_hf_config_json(const struct run_config *cfg) {
    if (!cfg->model.n_hf_config) return NULL;
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < cfg->model.n_hf_config; i++) {
        const char *k = cfg->model.hf_config[i].key, *v = cfg->model.hf_config[i].value;
        char *end;
        double d = strtod(v, &end);
        if (*v && !*end) cJSON_AddNumberToObject(j, k, d);
        else if (truthy(v) || falsy(v)) cJSON_AddBoolToObject(j, k, truthy(v));
        else cJSON_AddStringToObject(j, k, v);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}
