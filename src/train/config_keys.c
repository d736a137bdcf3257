/* config_keys: see config_keys.h. Keys of one section stay contiguous (the dump relies on it). */
#include "train/config_keys.h"

#include "train/config.h"

const struct choice cfg_run_modes[] = {{"finetune", RUN_MODE_FINETUNE},
                                          {"train", RUN_MODE_TRAIN},
                                          {"predict", RUN_MODE_PREDICT},
                                          {"eval", RUN_MODE_EVAL},
                                          {0, 0}};
static const struct choice dtypes[] = {
    {"float32", DTYPE_F32}, {"bfloat16", DTYPE_BF16}, {"fp32", DTYPE_F32}, {"bf16", DTYPE_BF16}, {0, 0}};
static const struct choice pet_types[] = {{"none", PET_TYPE_NONE}, {"lora", PET_TYPE_LORA}, {0, 0}};
const struct choice cfg_formats[] = {{"auto", DATA_FORMAT_AUTO},
                                        {"alpaca", DATA_FORMAT_ALPACA},
                                        {"messages", DATA_FORMAT_MESSAGES},
                                        {"sharegpt", DATA_FORMAT_SHAREGPT},
                                        {"text", DATA_FORMAT_TEXT},
                                        {"tokenized", DATA_FORMAT_TOKENIZED},
                                        {"mindformers_alpaca", DATA_FORMAT_MINDFORMERS_ALPACA},
                                        {0, 0}};
static const struct choice pack_strategies[] = {
    {"best_fit", PACK_STRATEGY_BEST_FIT}, {"pack", PACK_STRATEGY_PACK}, {0, 0}};
static const struct choice ckpt_formats[] = {
    {"safetensors", CHECKPOINT_FORMAT_SAFETENSORS}, {"ckpt", CHECKPOINT_FORMAT_CKPT}, {0, 0}};
static const struct choice truncations[] = {{"right", TRUNCATION_RIGHT},
                                            {"left", TRUNCATION_LEFT},
                                            {"drop", TRUNCATION_DROP},
                                            {"error", TRUNCATION_ERROR},
                                            {0, 0}};
static const struct choice losses[] = {
    {"assistant", LOSS_ON_ASSISTANT}, {"last_turn", LOSS_ON_LAST_TURN}, {"all", LOSS_ON_ALL}, {0, 0}};
/* MindSpore's class names are accepted as spellings of the same cfg_schedules. */
const struct choice cfg_schedules[] = {{"constant", LR_SCHEDULE_CONSTANT},
                                          {"linear", LR_SCHEDULE_LINEAR},
                                          {"cosine", LR_SCHEDULE_COSINE},
                                          {"wsd", LR_SCHEDULE_WSD},
                                          {"ConstantWarmUpLR", LR_SCHEDULE_CONSTANT},
                                          {"LinearWithWarmUpLR", LR_SCHEDULE_LINEAR},
                                          {"CosineWithWarmUpLR", LR_SCHEDULE_COSINE},
                                          {"WarmUpStableDecayLR", LR_SCHEDULE_WSD},
                                          {0, 0}};
static const struct choice optimizers[] = {
    {"AdamW", OPTIMIZER_ADAMW}, {"FusedAdamWeightDecay", OPTIMIZER_ADAMW}, {0, 0}};
static const struct choice nonfinites[] = {{"stop", ON_NONFINITE_STOP}, {"skip", ON_NONFINITE_SKIP}, {0, 0}};
static const struct choice devices[] = {{"cpu", DEVICE_CPU}, {"cuda", DEVICE_CUDA}, {"cuda-bf16", DEVICE_CUDA_BF16}, {0, 0}};

#define RC(f) offsetof(struct run_config, f)
#define DS(f) offsetof(struct config_dataset, f)

/* Run-level keys and the model. Keys of one section stay contiguous (the dump relies on it). */
static const struct key_def run_keys[] = {
    {"run_mode", KT_ENUM, RC(run_mode), "finetune", 0, 0, 0, cfg_run_modes, 0,
     "What `csft run` does: finetune (loss on answers), train (loss on whole text), predict, eval."},
    {"seed", KT_INT64, RC(seed), "42", K_MIN, 0, 0, 0, 0,
     "Seed of every random stream (init of LoRA A, dropout, shuffling, sampling)."},
    {"output_dir", KT_STRING, RC(output_dir), "./output", 0, 0, 0, 0, 0,
     "Folder for checkpoints, the final model or adapter, metrics.jsonl, TensorBoard events and the resolved "
     "config."},
    {"load_checkpoint", KT_STRING, RC(load_checkpoint), "''", 0, 0, 0, 0, 0,
     "The Hugging Face model folder to start from (config.json, *.safetensors, tokenizer files). Required."},
    {"device", KT_ENUM, RC(device), "cpu", 0, 0, 0, devices, 0,
     "Kernel backend: cpu, cuda (fp32 GEMMs on the GPU) or cuda-bf16 (bf16 GEMMs, fp32 accumulation); cuda needs "
     "a `make CUDA=1` build and a GPU. compute_dtype: bfloat16 with device: cuda selects cuda-bf16."},
    {"resume_training", KT_BOOL, RC(resume_training), "false", 0, 0, 0, 0, "resume",
     "Continue from the newest valid checkpoint in output_dir (a damaged one is skipped with a warning)."},
    {"resume_from_checkpoint", KT_STRING, RC(resume_from_checkpoint), "''", 0, 0, 0, 0, 0,
     "A specific checkpoint folder to resume from; setting it implies resume_training."},
    {"model.model_config.num_layers", KT_INT, RC(model.num_layers), "0", K_MIN, 0, 0, 0, 0,
     "Keep only the first N decoder layers of the checkpoint (0 = all), as MindSpore's single-device example "
     "does."},
    {"model.model_config.compute_dtype", KT_ENUM, RC(model.compute_dtype), "float32", 0, 0, 0, dtypes, 0,
     "Dtype of the matmuls: float32, or bfloat16 (bf16 GEMMs: device: cuda; the CPU computes in float32)."},
    {"model.model_config.param_init_type", KT_ENUM, RC(model.param_init_type), "float32", 0, 0, 0, dtypes, 0,
     "Dtype the frozen base weights are held in: float32 or bfloat16. Trained weights always keep float32 "
     "masters."},
    {"model.model_config.recompute", KT_BOOL, RC(model.recompute), "false", 0, 0, 0, 0, 0,
     "Recompute layer activations in the backward pass instead of storing them (less memory, about one more "
     "forward pass of compute)."},
    {"model.model_config.hf_config", KT_MAP, RC(model.hf_config), "{}", 0, 0, 0, 0, 0,
     "HF config.json keys giving the shape of a MindSpore .ckpt load_checkpoint that has no config.json beside it "
     "(e.g. {model_type: qwen2, hidden_size: '3584', ...}); checked against config.json when there is one."},
    {"model.model_config.pet_config.pet_type", KT_ENUM, RC(model.pet.pet_type), "none", 0, 0, 0, pet_types, 0,
     "Parameter-efficient tuning: lora, or none for full fine-tuning."},
    {"model.model_config.pet_config.lora_rank", KT_INT, RC(model.pet.lora_rank), "8", K_MIN, 1, 0, 0, 0,
     "Rank r of the LoRA matrices A (r x in) and B (out x r)."},
    {"model.model_config.pet_config.lora_alpha", KT_FLOAT, RC(model.pet.lora_alpha), "16", K_MIN | K_MIN_EXCL,
     0, 0, 0, 0,
     "LoRA scaling numerator: the update is (lora_alpha / r) * B A (or lora_alpha / sqrt(r) with "
     "use_rslora)."},
    {"model.model_config.pet_config.lora_dropout", KT_FLOAT, RC(model.pet.lora_dropout), "0.0",
     K_MIN | K_MAX | K_MAX_EXCL, 0, 1, 0, 0, "Dropout on the LoRA branch input during training, in [0, 1)."},
    {"model.model_config.pet_config.target_modules", KT_TARGETS, RC(model.pet.target_modules),
     "[q_proj, k_proj, v_proj, o_proj]", 0, 0, 0, 0, 0,
     "Linear layers that get adapters. A list: module-name suffixes (q_proj, k_proj, v_proj, o_proj, "
     "gate_proj, "
     "up_proj, down_proj). A string: a regex that must match the whole module name (PEFT semantics), e.g. "
     "'.*(q_proj|v_proj)'."},
    {"model.model_config.pet_config.use_rslora", KT_BOOL, RC(model.pet.use_rslora), "false", 0, 0, 0, 0, 0,
     "Rank-stabilized LoRA scaling lora_alpha / sqrt(r)."},
    {"model.model_config.pet_config.adapter_path", KT_STRING, RC(model.pet.adapter_path), "''", 0, 0, 0, 0, 0,
     "A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) to continue training; '' = "
     "fresh adapter."},
};

static const struct key_def dataset_keys[] = {
    {"data_files", KT_STR_LIST, DS(data_files), "[]", 0, 0, 0, 0, 0,
     "Files or folders to read: .json, .jsonl (optionally .gz), .parquet, .arrow, or a datasets save_to_disk "
     "folder. "
     "A string is one file."},
    {"format", KT_ENUM, DS(format), "auto", 0, 0, 0, cfg_formats, 0,
     "Record layout: alpaca (instruction/input/output), messages (OpenAI role/content), sharegpt "
     "(from/value), text "
     "(plain text, loss on all), tokenized (input_ids [+ labels]); auto = detect from the first record's "
     "columns."},
    {"column_mapping", KT_MAP, DS(column_mapping), "{}", 0, 0, 0, 0, 0,
     "Rename dataset columns to the canonical ones, canonical: dataset column, e.g. {instruction: question, "
     "output: answer}."},
    {"chat_template", KT_STRING, DS(chat_template), "''", 0, 0, 0, 0, 0,
     "Prompt format: '' = the tokenizer's own chat_template; a name (alpaca, chatml, ...) or a Jinja file "
     "path."},
    {"seq_length", KT_INT, DS(seq_length), "2048", K_MIN, 2, 0, 0, 0, "Tokens per training sequence."},
    {"packing", KT_BOOL, DS(packing), "false", 0, 0, 0, 0, 0,
     "Pack several examples into one sequence (attention does not cross example boundaries)."},
    {"pack_strategy", KT_ENUM, DS(pack_strategy), "best_fit", 0, 0, 0, pack_strategies, 0,
     "best_fit (best-fit decreasing, fewest rows) or pack (MindSpore Transformers' PackingHandler: greedy in "
     "dataset order, then rows shuffled)."},
    {"truncation", KT_ENUM, DS(truncation), "right", 0, 0, 0, truncations, 0,
     "Examples longer than seq_length: right (cut the end), left (cut the start), drop (skip, counted), "
     "error."},
    {"loss_on", KT_ENUM, DS(loss_on), "assistant", 0, 0, 0, losses, 0,
     "Tokens that carry loss: assistant (every answer), last_turn (the final answer), all (whole text)."},
    {"train_on_eos", KT_BOOL, DS(train_on_eos), "true", 0, 0, 0, 0, 0,
     "Train each trained turn's end-of-turn token (false: its content only)."},
    {"shuffle", KT_BOOL, DS(shuffle), "true", 0, 0, 0, 0, 0, "Shuffle examples each epoch (seeded by seed)."},
    {"tokenizer", KT_STRING, DS(tokenizer), "''", 0, 0, 0, 0, 0,
     "Folder with tokenizer.json / tokenizer_config.json; '' = load_checkpoint."},
    {"vocab_file", KT_STRING, DS(vocab_file), "''", 0, 0, 0, 0, 0,
     "vocab.json of a byte-level BPE tokenizer (as MindSpore's Qwen2Tokenizer); needs merges_file."},
    {"merges_file", KT_STRING, DS(merges_file), "''", 0, 0, 0, 0, 0, "merges.txt that goes with vocab_file."},
    {"cache_dir", KT_STRING, DS(cache_dir), "''", 0, 0, 0, 0, 0,
     "Folder to cache tokenized examples between runs; '' = no cache."},
    {"skip_bad_rows", KT_BOOL, DS(skip_bad_rows), "false", 0, 0, 0, 0, 0,
     "Skip (and count) malformed rows instead of stopping with the file and row number."},
};

static const struct key_def train_keys[] = {
    {"runner_config.epochs", KT_INT, RC(runner_config.epochs), "1", K_MIN, 1, 0, 0, 0,
     "Passes over train_dataset."},
    {"runner_config.batch_size", KT_INT, RC(runner_config.batch_size), "1", K_MIN, 1, 0, 0, 0,
     "Sequences per micro batch per process."},
    {"runner_config.gradient_accumulation_steps", KT_INT, RC(runner_config.gradient_accumulation_steps), "1",
     K_MIN, 1, 0, 0, 0,
     "Micro batches per optimizer step; global batch = batch_size x this x data_parallel."},
    {"runner_config.max_steps", KT_INT64, RC(runner_config.max_steps), "-1", K_MIN, -1, 0, 0, 0,
     "Stop after this many optimizer steps; -1 = epochs x steps per epoch."},
    {"optimizer.type", KT_ENUM, RC(optimizer.type), "AdamW", 0, 0, 0, optimizers, 0,
     "AdamW with decoupled weight decay (torch.optim.AdamW)."},
    {"optimizer.learning_rate", KT_FLOAT, RC(optimizer.learning_rate), "5.0e-5", K_MIN | K_MIN_EXCL, 0, 0, 0,
     0, "Peak learning rate."},
    {"optimizer.betas", KT_FLOAT2, RC(optimizer.betas), "[0.9, 0.999]", K_MIN | K_MAX | K_MAX_EXCL, 0, 1, 0,
     0, "AdamW beta1, beta2, each in [0, 1)."},
    {"optimizer.eps", KT_FLOAT, RC(optimizer.eps), "1.0e-8", K_MIN | K_MIN_EXCL, 0, 0, 0, 0,
     "AdamW epsilon."},
    {"optimizer.weight_decay", KT_FLOAT, RC(optimizer.weight_decay), "0.0", K_MIN, 0, 0, 0, 0,
     "Decoupled weight decay (not applied to biases and norm weights)."},
    {"lr_schedule.type", KT_ENUM, RC(lr_schedule.type), "cosine", 0, 0, 0, cfg_schedules, 0,
     "constant, linear (to min_lr), cosine (to min_lr), wsd (warmup, stable, decay); MindSpore's "
     "CosineWithWarmUpLR etc. are accepted."},
    {"lr_schedule.warmup_steps", KT_INT64, RC(lr_schedule.warmup_steps), "0", K_MIN, 0, 0, 0, 0,
     "Linear warmup from 0 over this many steps."},
    {"lr_schedule.warmup_ratio", KT_FLOAT, RC(lr_schedule.warmup_ratio), "0.0", K_MIN | K_MAX, 0, 1, 0, 0,
     "Warmup as a fraction of the total steps (set warmup_steps or warmup_ratio, not both)."},
    {"lr_schedule.min_lr", KT_FLOAT, RC(lr_schedule.min_lr), "0.0", K_MIN, 0, 0, 0, "lr_end",
     "Learning rate at the end of the decay."},
    {"lr_schedule.decay_ratio", KT_FLOAT, RC(lr_schedule.decay_ratio), "0.1", K_MIN | K_MAX, 0, 1, 0, 0,
     "wsd: fraction of the total steps spent in the final (linear) decay."},
    {"max_grad_norm", KT_FLOAT, RC(max_grad_norm), "1.0", K_MIN, 0, 0, 0, "grad_clip",
     "Clip the global gradient norm to this; 0 = no clipping."},
    {"on_nonfinite", KT_ENUM, RC(on_nonfinite), "stop", 0, 0, 0, nonfinites, 0,
     "A NaN/Inf loss or gradient norm: stop (with the step number) or skip the step and count it."},
    {"parallel_config.data_parallel", KT_INT, RC(parallel_config.data_parallel), "0", K_MIN, 0, 0, 0, 0,
     "Processes that each train on their own rows of every step (launch with mpirun -np N); 0 = as many "
     "as mpirun started, N = must equal the number started."},
    {"parallel_config.zero_stage", KT_INT, RC(parallel_config.zero_stage), "0", K_MIN | K_MAX, 0, 3, 0, 0,
     "ZeRO over the data_parallel ranks: 0 = every rank keeps everything; 1 = AdamW state sharded; 2 = "
     "gradients sharded too (reduce-scattered during the backward); 3 = weights sharded too (each layer "
     "gathered when used). See docs/distributed.md."},
    {"parallel_config.model_parallel", KT_INT, RC(parallel_config.model_parallel), "1", K_MIN, 1, 0, 0, 0,
     "Tensor parallelism: ranks that split every layer; mpirun -np = data_parallel x model_parallel."},
    {"parallel_config.pipeline_stage", KT_INT, RC(parallel_config.pipeline_stage), "1", K_ONLY_DEFAULT, 0, 0,
     0, 0, "Pipeline parallelism: only 1 (not supported yet)."},
    {"parallel_config.context_parallel", KT_INT, RC(parallel_config.context_parallel), "1", K_ONLY_DEFAULT, 0,
     0, 0, 0, "Context (sequence) parallelism: only 1 (not supported yet)."},
    {"parallel_config.expert_parallel", KT_INT, RC(parallel_config.expert_parallel), "1", K_ONLY_DEFAULT, 0,
     0, 0, 0, "Expert parallelism: only 1 (not supported yet)."},
    {"parallel_config.use_seq_parallel", KT_BOOL, RC(parallel_config.use_seq_parallel), "false",
     K_ONLY_DEFAULT, 0, 0, 0, 0, "Sequence parallelism: only false (not supported yet)."},
    {"save_steps", KT_INT64, RC(save_steps), "500", K_MIN, 0, 0, 0, 0,
     "Save a checkpoint every N optimizer steps (and always at the end); 0 = only at the end."},
    {"save_total_limit", KT_INT, RC(save_total_limit), "3", K_MIN, 0, 0, 0, 0,
     "Keep the newest N checkpoints; 0 = keep all."},
    {"save_dtype", KT_ENUM, RC(save_dtype), "float32", 0, 0, 0, dtypes, 0,
     "Dtype of saved weights (model or adapter): float32 or bfloat16."},
    {"checkpoint_format", KT_ENUM, RC(checkpoint_format), "safetensors", 0, 0, 0, ckpt_formats, 0,
     "ckpt: every checkpoint also writes output_dir/checkpoint/rank_0/<prefix>_rank_0-<epoch>_<step>.ckpt "
     "(MindSpore, their parameter names; LoRA: the adapter) and meta.json."},
    {"checkpoint_prefix", KT_STRING, RC(checkpoint_prefix), "csft", 0, 0, 0, 0, 0,
     "File-name prefix of checkpoint_format: ckpt files (CheckpointMonitor's prefix)."},
    {"logging_steps", KT_INT64, RC(logging_steps), "10", K_MIN, 1, 0, 0, 0,
     "Log the progress line, metrics.jsonl and TensorBoard every N optimizer steps."},
    {"eval_steps", KT_INT64, RC(eval_steps), "0", K_MIN, 0, 0, 0, 0,
     "Evaluate on eval_dataset every N steps; 0 = only at the end (when eval_dataset has data_files)."},
    {"tensorboard", KT_BOOL, RC(tensorboard), "true", 0, 0, 0, 0, 0,
     "Write TensorBoard event files to <output_dir>/tensorboard."},
    {"report", KT_BOOL, RC(report), "true", 0, 0, 0, 0, 0, "Write <output_dir>/report.html (charts; docs/report.md)."},
    {"peak_gflops", KT_FLOAT, RC(peak_gflops), "0", K_MIN, 0, 0, 0, 0,
     "Peak GFLOP/s of one process for MFU; 0 = measured once at start (docs/report.md)."},
    {"save_best", KT_BOOL, RC(save_best), "false", 0, 0, 0, 0, 0,
     "Save a checkpoint at each new lowest eval loss and keep it (save_total_limit never removes it)."},
    {"load_best_at_end", KT_BOOL, RC(load_best_at_end), "false", 0, 0, 0, 0, 0,
     "Write the best checkpoint (save_best) as the final model instead of the last weights."},
    {"eval_generations", KT_INT, RC(eval_generations), "0", K_MIN, 0, 0, 0, 0,
     "At each eval, answer the first N eval records (greedy, up to predict.max_new_tokens) and show them in report.html."},
    {"early_stopping_patience", KT_INT, RC(early_stopping_patience), "0", K_MIN, 0, 0, 0, 0,
     "Stop after N evals in a row without a lower eval loss (saving a last-state checkpoint); 0 = off."},
    {"predict.max_new_tokens", KT_INT, RC(predict.max_new_tokens), "256", K_MIN, 1, 0, 0, 0,
     "Generated tokens at most (generation also stops at the model's end tokens)."},
    {"predict.do_sample", KT_BOOL, RC(predict.do_sample), "false", 0, 0, 0, 0, 0,
     "Sample with temperature/top_k/top_p; false = greedy."},
    {"predict.temperature", KT_FLOAT, RC(predict.temperature), "1.0", K_MIN | K_MIN_EXCL, 0, 0, 0, 0,
     "Softmax temperature when sampling."},
    {"predict.top_k", KT_INT, RC(predict.top_k), "0", K_MIN, 0, 0, 0, 0,
     "Sample among the k most likely tokens; 0 = off."},
    {"predict.top_p", KT_FLOAT, RC(predict.top_p), "1.0", K_MIN | K_MAX | K_MIN_EXCL, 0, 1, 0, 0,
     "Nucleus sampling: the smallest set of tokens with probability >= top_p; 1 = off."},
    {"predict.prompt", KT_STRING, RC(predict.prompt), "''", 0, 0, 0, 0, 0,
     "One prompt to answer; '' with no input_file = interactive chat on the terminal."},
    {"predict.input_file", KT_STRING, RC(predict.input_file), "''", 0, 0, 0, 0, 0,
     "Prompts to answer: a text file (one per line) or JSONL with a prompt/messages column."},
    {"predict.output_file", KT_STRING, RC(predict.output_file), "''", 0, 0, 0, 0, 0,
     "Write the generations as JSONL here; '' = print them."},
    {"predict.batch_size", KT_INT, RC(predict.batch_size), "8", K_MIN, 1, 0, 0, 0,
     "input_file: prompts generated together, several per forward pass."},
};


const struct section cfg_sections[] = {
    {"", 0, run_keys, sizeof run_keys / sizeof run_keys[0], 0, 0},
    {"train_dataset", RC(train_dataset), dataset_keys, sizeof dataset_keys / sizeof dataset_keys[0], 0, 0},
    {"eval_dataset", RC(eval_dataset), dataset_keys, sizeof dataset_keys / sizeof dataset_keys[0], "shuffle",
     "false"},
    {"", 0, train_keys, sizeof train_keys / sizeof train_keys[0], 0, 0},
};

/* Headings for help and docs, one per section path. */
const char *const cfg_section_titles[][2] = {
    {"", "Run"},
    {"model.model_config", "Model (the architecture itself comes from load_checkpoint's config.json)"},
    {"model.model_config.pet_config", "LoRA (parameter-efficient tuning)"},
    {"train_dataset", "Training data"},
    {"eval_dataset", "Evaluation data (same keys as train_dataset; shuffle defaults to false)"},
    {"runner_config", "Steps and batches"},
    {"optimizer", "Optimizer"},
    {"lr_schedule", "Learning-rate schedule"},
    {"parallel_config", "Parallelism"},
    {"predict", "Generation (csft predict)"},
    /* top-level keys that follow other cfg_sections get a heading of their own */
    {"max_grad_norm", "Gradients and numerics"},
    {"save_steps", "Checkpoints and logging"},
};

/* Keys MindSpore Transformers users bring, with where the setting lives in csft. */
const char *const cfg_foreign_hints[][2] = {
    {"trainer", "csft picks the trainer from run_mode; remove it"},
    {"context", "MindSpore device context; csft has no equivalent, remove it"},
    {"parallel", "MindSpore parallel context; csft uses parallel_config.data_parallel"},
    {"use_parallel", "set parallel_config.data_parallel and launch with mpirun -np N"},
    {"runner_wrapper", "gradient clipping is max_grad_norm at the top level; loss scaling is not needed"},
    {"callbacks", "checkpointing and logging are save_steps, save_total_limit and logging_steps"},
    {"processor", "tokenizer files go in train_dataset: tokenizer, or vocab_file + merges_file"},
    {"recompute_config", "use model.model_config.recompute: true"},
    {"do_eval", "set eval_dataset.data_files (and eval_steps)"},
    {"eval_step_interval", "use eval_steps"},
    {"eval_epoch_interval", "use eval_steps"},
    {"train_dataset_task", "datasets are read directly from train_dataset; remove it"},
    {"eval_dataset_task", "datasets are read directly from eval_dataset; remove it"},
    {"auto_trans_ckpt", "csft loads Hugging Face folders directly; remove it"},
    {"only_save_strategy", "MindSpore-specific; remove it"},
    {"micro_batch_interleave_num", "MindSpore-specific; remove it"},
    {"metric", "csft eval reports loss and perplexity; remove it"},
    {"model.model_config.type", "the architecture comes from load_checkpoint's config.json; remove it"},
    {"model.arch", "the architecture comes from load_checkpoint's config.json; remove it"},
    {"model.model_config.seq_length", "use train_dataset.seq_length"},
    {"model.model_config.batch_size", "use runner_config.batch_size"},
    {"model.model_config.top_k", "use predict.top_k"},
    {"model.model_config.top_p", "use predict.top_p"},
    {"model.model_config.do_sample", "use predict.do_sample"},
    {"model.model_config.max_decode_length", "use predict.max_new_tokens"},
    {"model.model_config.checkpoint_name_or_path", "use load_checkpoint"},
    {"model.model_config.*", "the architecture comes from load_checkpoint's config.json; remove it"},
    {"*_dataset.data_loader", "use data_files (and format)"},
    {"*_dataset.batch_size", "use runner_config.batch_size"},
    {"*_dataset.*", "MindSpore data-pipeline setting; remove it"},
    {"lr_schedule.learning_rate", "use optimizer.learning_rate"},
    {"lr_schedule.total_steps", "use runner_config.max_steps"},
    {"parallel_config.*", "not supported yet: csft parallelizes over data_parallel x model_parallel"},
    {"runner_config.sink_mode", "MindSpore-specific; remove it"},
    {"runner_config.sink_size", "MindSpore-specific; remove it"},
    {"optimizer.*", "csft's AdamW takes learning_rate, betas, eps, weight_decay"},
};

const size_t cfg_n_sections = sizeof cfg_sections / sizeof cfg_sections[0];
const size_t cfg_n_section_titles = sizeof cfg_section_titles / sizeof cfg_section_titles[0];
const size_t cfg_n_foreign_hints = sizeof cfg_foreign_hints / sizeof cfg_foreign_hints[0];
