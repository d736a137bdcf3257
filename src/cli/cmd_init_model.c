/* csft init-model: writes a random-weight Qwen2 or Llama model in Hugging Face layout
 * (config.json + model.safetensors + generation_config.json), for demos, tests and benchmarks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "model/model.h"
#include "tok/tokenizer.h"
#include "tok/tokenizer_shrink.h"

static void usage(FILE *f) {
    fprintf(f, "usage: csft init-model --out DIR [options]\n\n"
               "Writes a random-weight model (normal std 0.02, norms 1) in Hugging Face layout.\n"
               "  --arch qwen2|qwen3|llama|mistral   (default qwen2)\n"
               "  --preset tiny|small|qwen2.5-0.5b|qwen2.5-7b   shapes (default tiny); flags below override\n"
               "  --vocab N --hidden N --ffn N --layers N --heads N --kv-heads N --head-dim N\n"
               "  --rope-theta X  --tie 0|1  --max-pos N  --bos ID --eos ID\n"
               "  --dtype float32|bfloat16   stored dtype (default float32)\n"
               "  --seed N\n"
               "  --tokenizer DIR   copy this folder's tokenizer.json into the model folder; with --tokenizer-vocab N,\n"
               "                    keep only its first N BPE ids (a valid smaller BPE) for a small demo model.\n"
               "                    --vocab then defaults to the tokenizer's size\n");
}

int cmd_init_model(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return usage(stdout), 0;
    struct model_config c = {0};
    c.arch = ARCH_QWEN2;
    c.vocab_size = 512, c.hidden_size = 64, c.intermediate_size = 176, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2;
    c.max_position_embeddings = 4096, c.rms_norm_eps = 1e-6f, c.rope_theta = 1e6, c.tie_word_embeddings = 1;
    c.bos_token_id = -1;
    const char *out = NULL, *arch = "qwen2", *dtype = "float32";
    unsigned long long seed = 1234;
    int head_dim = 0, tie = -1, tok_vocab = 0, vocab_set = 0;
    const char *tok_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "csft init-model: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--preset")) {
            if (!strcmp(v, "tiny")) {
            } else if (!strcmp(v, "small")) {
                c.vocab_size = 32000, c.hidden_size = 512, c.intermediate_size = 1376, c.n_layers = 8, c.n_heads = 8;
                c.n_kv_heads = 2;
            } else if (!strcmp(v, "qwen2.5-0.5b")) {
                c.vocab_size = 151936, c.hidden_size = 896, c.intermediate_size = 4864, c.n_layers = 24, c.n_heads = 14;
                c.n_kv_heads = 2, c.max_position_embeddings = 32768;
            } else if (!strcmp(v, "qwen2.5-7b")) {
                c.vocab_size = 152064, c.hidden_size = 3584, c.intermediate_size = 18944, c.n_layers = 28, c.n_heads = 28;
                c.n_kv_heads = 4, c.max_position_embeddings = 32768, tie = 0;
            } else {
                fprintf(stderr, "csft init-model: unknown preset '%s' (tiny, small, qwen2.5-0.5b, qwen2.5-7b)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--vocab")) c.vocab_size = atoi(v), vocab_set = 1;
        else if (!strcmp(a, "--tokenizer")) tok_dir = v;
        else if (!strcmp(a, "--tokenizer-vocab")) tok_vocab = atoi(v);
        else if (!strcmp(a, "--hidden")) c.hidden_size = atoi(v);
        else if (!strcmp(a, "--ffn")) c.intermediate_size = atoi(v);
        else if (!strcmp(a, "--layers")) c.n_layers = atoi(v);
        else if (!strcmp(a, "--heads")) c.n_heads = atoi(v);
        else if (!strcmp(a, "--kv-heads")) c.n_kv_heads = atoi(v);
        else if (!strcmp(a, "--head-dim")) head_dim = atoi(v);
        else if (!strcmp(a, "--rope-theta")) c.rope_theta = atof(v);
        else if (!strcmp(a, "--tie")) tie = atoi(v);
        else if (!strcmp(a, "--max-pos")) c.max_position_embeddings = atoi(v);
        else if (!strcmp(a, "--bos")) c.bos_token_id = atoi(v);
        else if (!strcmp(a, "--eos")) c.eos_token_ids[0] = atoi(v), c.n_eos = 1;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "csft init-model: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(arch, "qwen2")) c.arch = ARCH_QWEN2, c.qkv_bias = 1;
    else if (!strcmp(arch, "qwen3")) c.arch = ARCH_QWEN3, c.qk_norm = 1;
    else if (!strcmp(arch, "llama")) c.arch = ARCH_LLAMA;
    else if (!strcmp(arch, "mistral")) c.arch = ARCH_MISTRAL;
    else {
        fprintf(stderr, "csft init-model: unknown --arch '%s' (qwen2, qwen3, llama, mistral)\n", arch);
        return 2;
    }
    static const char *types[] = {"qwen2", "qwen3", "llama", "mistral"};
    snprintf(c.model_type, sizeof c.model_type, "%s", types[c.arch]);
    if (tie >= 0) c.tie_word_embeddings = tie;
    else c.tie_word_embeddings = c.arch == ARCH_QWEN2 || c.arch == ARCH_QWEN3;
    if (c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads || c.hidden_size <= 0 || c.vocab_size <= 0 ||
        c.n_layers <= 0 || c.intermediate_size <= 0) {
        fprintf(stderr, "csft init-model: invalid shape (heads must be a multiple of kv-heads; sizes positive)\n");
        return 2;
    }
    c.head_dim = head_dim ? head_dim : c.hidden_size / c.n_heads;
    int bf16 = !strcmp(dtype, "bfloat16");
    if (!bf16 && strcmp(dtype, "float32")) {
        fprintf(stderr, "csft init-model: --dtype must be float32 or bfloat16\n");
        return 2;
    }
    if (tok_dir) { /* the tokenizer decides the vocabulary (and the end token) */
        char *src = dir_exists(tok_dir) ? path_join(tok_dir, "tokenizer.json") : xstrdup(tok_dir);
        int n = 0, rc;
        if (tok_vocab > 0) {
            rc = tokenizer_shrink(src, tok_vocab, out, &n);
        } else {
            struct tokenizer *tk;
            rc = tokenizer_load(&tk, tok_dir);
            if (rc == 0) n = tokenizer_vocab_size(tk), tokenizer_free(tk);
            size_t len;
            char *buf = rc == 0 ? file_read_all(src, &len) : NULL;
            char *dst = path_join(out, "tokenizer.json");
            if (rc == 0) rc = dir_create(out) || !buf || file_write_atomic(dst, buf, len) ? -1 : 0;
            free(buf), free(dst);
            if (rc == 0 && dir_exists(tok_dir)) rc = file_copy_if_exists(tok_dir, out, "tokenizer_config.json");
        }
        free(src);
        if (rc) return cli_fail("init-model");
        if (!vocab_set) c.vocab_size = n;
        else if (c.vocab_size < n) {
            fprintf(stderr, "csft init-model: --vocab %d is smaller than the tokenizer's %d tokens\n", c.vocab_size, n);
            return 2;
        }
        struct tokenizer *tk;
        if (tokenizer_load(&tk, out) == 0) {
            int32_t e = tokenizer_token_id(tk, "<|endoftext|>");
            if (e >= 0 && c.n_eos == 0) c.eos_token_ids[0] = e, c.n_eos = 1;
            tokenizer_free(tk);
        }
    }
    struct model m;
    model_init_random(&m, &c, seed, 0);
    if (model_save(&m, out, bf16, (size_t)5 << 30)) {
        model_free(&m);
        return cli_fail("init-model");
    }
    char gen[256];
    snprintf(gen, sizeof gen, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"do_sample\": false\n}\n",
             c.bos_token_id, c.n_eos ? c.eos_token_ids[0] : -1);
    char *gp = path_join(out, "generation_config.json");
    int rc = file_write_atomic(gp, gen, strlen(gen));
    free(gp);
    int64_t n = m.n_base;
    model_free(&m);
    if (rc) return cli_fail("init-model");
    printf("wrote %s: %s, %.1fM parameters\n", out, types[c.arch], n / 1e6);
    return 0;
}
