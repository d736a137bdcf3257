/* mf_names: MindSpore Transformers' parameter names for the legacy LlamaForCausalLM (used for
 * Qwen2/2.5 and Llama), and reading a model's tensors out of a MindSpore .ckpt under them.
 * HF -> MindFormers: embed_tokens -> tok_embeddings.embedding_weight, self_attn.{q,k,v,o}_proj
 * -> attention.w{q,k,v,o}, mlp.{gate,up,down}_proj -> feed_forward.w{1,3,2}, input_layernorm ->
 * attention_norm, post_attention_layernorm -> ffn_norm, model.norm -> model.norm_out; LoRA
 * (PEFT lora_A/lora_B) -> <cell>.mindpet_delta_lora_a/_b. Tensors keep HF's [out, in] layout.
 * qkv_concat checkpoints hold attention.w_qkv (Megatron-interleaved per KV group) and
 * feed_forward.w_gate_hidden (gate/up rows interleaved); both are split on read. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "io/ckpt.h"
#include "model/model_config.h"

/* 0 and the other spelling in out, or -1 if the name has none. */
int mf_name_from_hf(const char *hf, char *out, size_t n);
int mf_name_to_hf(const char *mf, char *out, size_t n);
/* Reads HF-named tensor hf_name of a model with config c into dst (float32), from its
 * MindFormers name, or from the concatenated w_qkv / w_gate_hidden. Shape is checked. */
int mf_ckpt_read(const struct ckpt *ck, const struct model_config *c, const char *hf_name, float *dst,
                 const int64_t *shape, int n_dims);

struct model;
/* Writes the model's base weights (float32 base) under MindSpore Transformers' names, in HF
 * module order, as Float32 / BFloat16 / Float16 (dt), optionally with the crc_num tail. */
int mf_ckpt_save_model(const struct model *m, const char *path, enum dtype dt, int crc);
/* Writes the LoRA matrices as <cell>.mindpet_delta_lora_a [r, in] / _b [out, r] (Float32). */
int mf_ckpt_save_lora(const struct model *m, const char *path);
