/* csft convert SRC DST [--config CONFIG_JSON]: MindSpore .ckpt <-> Hugging Face model folder.
 * The direction follows from SRC: a .ckpt file (or a folder with rank_0/ *.ckpt) becomes an HF
 * folder DST; an HF folder becomes the .ckpt file DST. Weights keep their dtype (Float16 is
 * written as float32 safetensors); names follow MindSpore Transformers (model/mf_names.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "io/ckpt.h"
#include "io/safetensors.h"
#include "model/mf_names.h"
#include "model/model.h"

static void usage(FILE *f) {
    fprintf(f, "usage: csft convert SRC DST [--config CONFIG_JSON] [--dtype float32|bfloat16|float16] [--crc]\n\n"
               "Converts between a MindSpore .ckpt (MindSpore Transformers' Qwen2/Llama names: wq/wk/wv or w_qkv,\n"
               "w1/w3 or w_gate_hidden, ...) and a Hugging Face model folder (config.json + model.safetensors).\n"
               "  SRC .ckpt file, or a folder with rank_0/*.ckpt  ->  DST folder (HF)\n"
               "  SRC HF folder                                   ->  DST .ckpt file\n"
               "  --config   the HF config.json giving the shape of a .ckpt (default: config.json beside SRC)\n"
               "  --dtype    dtype written (default: the source's)\n"
               "  --crc      append MindSpore's crc_num tail to a written .ckpt\n"
               "Entries of a .ckpt that are not model weights (optimizer moments, step counters) are skipped\n"
               "and counted. Tokenizer files are not needed and not copied.\n");
}

static int parse_dtype(const char *s, enum dtype *dt) {
    if (!strcmp(s, "float32")) *dt = DTYPE_F32;
    else if (!strcmp(s, "bfloat16")) *dt = DTYPE_BF16;
    else if (!strcmp(s, "float16")) *dt = DTYPE_F16;
    else return err_set("--dtype: expected float32, bfloat16 or float16, found '%s'", s);
    return 0;
}

static int to_hf(const char *src, const char *dst, const char *config_json, int dt_set, enum dtype dt) {
    struct ckpt *ck;
    if (ckpt_open(&ck, src)) return -1;
    const struct ckpt_tensor *emb = ckpt_find(ck, "model.tok_embeddings.embedding_weight");
    if (!dt_set) dt = emb && emb->dtype == DTYPE_BF16 ? DTYPE_BF16 : DTYPE_F32;
    int skipped = 0;
    char first[200] = "";
    for (int i = 0; i < ck->n; i++) {
        char hf[200];
        if (mf_name_to_hf(ck->t[i].name, hf, sizeof hf) || !strncmp(hf, "base_model.", 11)) {
            if (!skipped++) snprintf(first, sizeof first, "%s", ck->t[i].name);
        }
    }
    char *ckpath = xstrdup(ck->path);
    ckpt_close(ck);
    struct model m;
    int rc = model_load_from(&m, src, config_json, 0, 0, 0);
    if (rc == 0) {
        snprintf(m.cfg.torch_dtype, sizeof m.cfg.torch_dtype, "%s", dt == DTYPE_BF16 ? "bfloat16" : "float32");
        rc = model_save(&m, dst, dt == DTYPE_BF16, 0);
        if (rc == 0)
            printf("wrote %s (%d tensors, %s) from %s%s", dst, m.n_params, dt == DTYPE_BF16 ? "bfloat16" : "float32", ckpath,
                   skipped ? "" : "\n");
        if (rc == 0 && skipped) printf("; skipped %d entries that are not model weights (first: %s)\n", skipped, first);
        model_free(&m);
    }
    free(ckpath);
    return rc;
}

static int to_ckpt(const char *src, const char *dst, int dt_set, enum dtype dt, int crc) {
    if (!dt_set) {
        struct safetensors *st;
        if (safetensors_open(&st, src)) return -1;
        const struct st_tensor *t = safetensors_find(st, "model.embed_tokens.weight");
        dt = t && (t->dtype == DTYPE_BF16 || t->dtype == DTYPE_F16) ? t->dtype : DTYPE_F32;
        safetensors_close(st);
    }
    struct model m;
    if (model_load(&m, src, 0, 0)) return -1;
    int rc = mf_ckpt_save_model(&m, dst, dt, crc);
    if (rc == 0) printf("wrote %s (%d tensors, %s%s) from %s\n", dst, m.n_params, ckpt_type_name(dt), crc ? ", crc_num" : "", src);
    model_free(&m);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return usage(stdout), 0;
    const char *pos[2] = {0}, *config = NULL;
    int n_pos = 0, crc = 0, dt_set = 0;
    enum dtype dt = DTYPE_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") || !strcmp(a, "--dtype")) {
            if (i + 1 >= argc) return fprintf(stderr, "csft convert: %s needs a value\n", a), 2;
            if (!strcmp(a, "--config")) config = argv[++i];
            else if (parse_dtype(argv[++i], &dt)) return cli_fail("convert");
            else dt_set = 1;
        } else if (!strcmp(a, "--crc")) {
            crc = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "csft convert: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "csft convert: expected SRC and DST, found a third argument '%s'\n", a);
            return 2;
        }
    }
    if (n_pos != 2) return usage(stderr), 2;
    char *config_json = NULL;
    if (config && !(config_json = file_read_all(config, NULL))) return cli_fail("convert");
    int rc;
    if (ckpt_is_checkpoint(pos[0])) rc = to_hf(pos[0], pos[1], config_json, dt_set, dt);
    else if (dir_exists(pos[0])) {
        size_t l = strlen(pos[1]);
        if (l < 5 || strcmp(pos[1] + l - 5, ".ckpt"))
            rc = err_set("%s is a Hugging Face folder: DST must be a .ckpt file name, found '%s'", pos[0], pos[1]);
        else rc = to_ckpt(pos[0], pos[1], dt_set, dt, crc);
    } else rc = err_set("%s: neither a .ckpt file, a folder with rank_0/*.ckpt, nor a Hugging Face model folder", pos[0]);
    free(config_json);
    return rc ? cli_fail("convert") : 0;
}
