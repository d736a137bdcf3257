/* tokenizer_shrink: see tokenizer_shrink.h. */
#include "tok/tokenizer_shrink.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static int kept(const cJSON *vocab, const char *tok, int n_base) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(vocab, tok);
    return id && cJSON_IsNumber(id) && id->valueint < n_base;
}

int tokenizer_shrink(const char *src, int n_base, const char *dst_dir, int *vocab_out) {
    char *text = file_read_all(src, NULL);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON *model = cJSON_GetObjectItem(j, "model");
    cJSON *vocab = cJSON_GetObjectItem(model, "vocab"), *merges = cJSON_GetObjectItem(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        cJSON_Delete(j);
        return err_set("%s: not a BPE tokenizer.json (model.vocab / model.merges missing)", src);
    }
    if (n_base < 256) {
        cJSON_Delete(j);
        return err_set("the shrunk vocabulary must keep at least the 256 byte tokens (asked for %d)", n_base);
    }
    cJSON *nv = cJSON_CreateObject(), *e;
    cJSON_ArrayForEach(e, vocab) if (e->valueint < n_base) cJSON_AddNumberToObject(nv, e->string, e->valueint);
    cJSON *nm = cJSON_CreateArray();
    cJSON_ArrayForEach(e, merges) {
        const char *a, *b;
        char buf[1024];
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || sp - e->valuestring >= 512) continue;
            memcpy(buf, e->valuestring, (size_t)(sp - e->valuestring));
            buf[sp - e->valuestring] = 0;
            a = buf, b = sp + 1;
        } else {
            a = cJSON_GetStringValue(cJSON_GetArrayItem(e, 0)), b = cJSON_GetStringValue(cJSON_GetArrayItem(e, 1));
            if (!a || !b) continue;
        }
        char *ab = xasprintf("%s%s", a, b);
        if (kept(vocab, a, n_base) && kept(vocab, b, n_base) && kept(vocab, ab, n_base))
            cJSON_AddItemToArray(nm, cJSON_Duplicate(e, 1));
        free(ab);
    }
    cJSON_ReplaceItemInObject(model, "vocab", nv);
    cJSON_ReplaceItemInObject(model, "merges", nm);
    /* added tokens follow the kept ids */
    cJSON *added = cJSON_GetObjectItem(j, "added_tokens"), *cfg = cJSON_CreateObject(), *dec = cJSON_CreateObject();
    int next = n_base;
    const char *eos = NULL;
    cJSON_ArrayForEach(e, added) {
        cJSON *id = cJSON_GetObjectItem(e, "id");
        if (id) cJSON_SetNumberValue(id, next);
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(e, "content"));
        char key[16];
        snprintf(key, sizeof key, "%d", next++);
        cJSON *d = cJSON_Duplicate(e, 1);
        cJSON_DeleteItemFromObject(d, "id");
        cJSON_AddItemToObject(dec, key, d);
        if (content && !eos && strstr(content, "endoftext")) eos = content;
    }
    cJSON_AddItemToObject(cfg, "added_tokens_decoder", dec);
    cJSON_AddStringToObject(cfg, "tokenizer_class", "Qwen2Tokenizer");
    if (eos) {
        cJSON_AddStringToObject(cfg, "eos_token", eos);
        cJSON_AddStringToObject(cfg, "pad_token", eos);
    }
    cJSON_AddNumberToObject(cfg, "model_max_length", 32768);
    char *s1 = cJSON_PrintUnformatted(j), *s2 = cJSON_Print(cfg), *s3 = cJSON_PrintUnformatted(nv);
    char *p1 = path_join(dst_dir, "tokenizer.json"), *p2 = path_join(dst_dir, "tokenizer_config.json");
    char *p3 = path_join(dst_dir, "vocab.json"), *p4 = path_join(dst_dir, "merges.txt");
    /* the same model as vocab.json + merges.txt (the files MindSpore's Qwen2Tokenizer and HF's slow
     * tokenizer take) */
    char *mt = NULL;
    size_t mlen = 0;
    FILE *mf = open_memstream(&mt, &mlen);
    fputs("#version: 0.2\n", mf);
    cJSON_ArrayForEach(e, nm) {
        if (cJSON_IsString(e)) fprintf(mf, "%s\n", e->valuestring);
        else fprintf(mf, "%s %s\n", cJSON_GetStringValue(cJSON_GetArrayItem(e, 0)), cJSON_GetStringValue(cJSON_GetArrayItem(e, 1)));
    }
    fclose(mf);
    int rc = dir_create(dst_dir);
    if (rc == 0) rc = file_write_atomic(p1, s1, strlen(s1));
    if (rc == 0) rc = file_write_atomic(p2, s2, strlen(s2));
    if (rc == 0) rc = file_write_atomic(p3, s3, strlen(s3));
    if (rc == 0) rc = file_write_atomic(p4, mt, mlen);
    free(s1), free(s2), free(s3), free(mt), free(p1), free(p2), free(p3), free(p4);
    cJSON_Delete(cfg);
    cJSON_Delete(j);
    *vocab_out = next;
    return rc;
}
