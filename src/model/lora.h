/* lora: LoRA adapters with PEFT's semantics (peft/tuners/lora): targets by module-name list
 * (exact or suffix match on the module path) or one regex (full match), MindSpore
 * Transformers' names wq/wk/wv/wo/w1/w2/w3 as aliases, scaling alpha/r (or alpha/sqrt(r)
 * for rsLoRA), A Kaiming-uniform and B zero at init; PEFT adapter folders in and out; merge. */
#pragma once
#include <stdint.h>

#include "model/model.h"

struct lora_spec {
    int rank;
    float alpha, dropout;
    int use_rslora;
    const char *const *targets; /* module names (list form) ... */
    int n_targets;
    const char *target_regex;   /* ... or one regex (PEFT's string form); NULL if list */
};

/* Attaches fresh adapters (PEFT init, seeded) to every matching linear. Errors if none match. */
int lora_attach(struct model *m, const struct lora_spec *spec, uint64_t seed);
/* Loads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) onto m. PEFT
 * options csft does not implement (layers_to_transform, exclude_modules, lora_bias, modules_to_save,
 * aLoRA, DoRA, ...) and .bin-only folders are refused naming the option. */
int lora_load_adapter(struct model *m, const char *dir);
/* Writes a PEFT adapter folder that PEFT loads unchanged; bf16: the matrices in bfloat16
 * (save_dtype), else float32. target_modules is written as given: the list, or the regex. */
int lora_save_adapter(const struct model *m, const char *dir, const char *base_model_name_or_path, int bf16);
/* W += scaling * B A for every adapter, then detaches the adapters. */
void lora_merge(struct model *m);
/* PEFT's file key for layer l, linear li, matrix 'A' or 'B' (without ".default"). */
void lora_key(char *buf, size_t n, int l, int li, char which);
