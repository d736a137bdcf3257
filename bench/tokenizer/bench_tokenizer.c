/* bench_tokenizer: load time and single-core encode throughput of csft's tokenizer on a JSONL
 * corpus of {"text"} documents (make_corpus.js). Prints one JSON line with MB/s and a hash of
 * all ids, which bench_hf.js prints too, so run.sh can check both produced the same ids. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/tokenizer.h"

/* CPU seconds of this thread: less disturbed than wall time on a shared machine. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER CORPUS.jsonl [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    double best_load = 1e9, best_load_cpu = 1e9;
    struct tokenizer *tk = NULL;
    for (int r = 0; r < 3; r++) {
        if (tk) tokenizer_free(tk);
        double t0 = time_now(), c0 = cpu_now();
        if (tokenizer_load(&tk, argv[1])) {
            fprintf(stderr, "%s\n", err_msg());
            return 1;
        }
        double dt = time_now() - t0, dc = cpu_now() - c0;
        if (dt < best_load) best_load = dt;
        if (dc < best_load_cpu) best_load_cpu = dc;
    }
    size_t len;
    char *data = file_read_all(argv[2], &len);
    if (!data) {
        fprintf(stderr, "%s\n", err_msg());
        return 1;
    }
    int64_t n_docs = 0, cap = 1024;
    char **docs = xmalloc((size_t)cap * sizeof(char *));
    size_t *lens = xmalloc((size_t)cap * sizeof(size_t));
    size_t bytes = 0;
    for (char *p = data, *nl; p < data + len; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = data + len;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (cJSON_IsString(t)) {
            if (n_docs == cap) {
                cap *= 2;
                docs = xrealloc(docs, (size_t)cap * sizeof(char *));
                lens = xrealloc(lens, (size_t)cap * sizeof(size_t));
            }
            docs[n_docs] = xstrdup(t->valuestring);
            lens[n_docs] = strlen(t->valuestring);
            bytes += lens[n_docs++];
        }
        cJSON_Delete(o);
    }
    free(data);
    double best = 1e9, best_cpu = 1e9;
    uint64_t hash = 0;
    int64_t n_ids = 0;
    struct tokenizer_buf b = {0};
    for (int r = 0; r < repeats; r++) {
        hash = 1469598103934665603ULL;
        n_ids = 0;
        double t0 = time_now(), c0 = cpu_now();
        for (int64_t d = 0; d < n_docs; d++) {
            b.n = 0;
            tokenizer_encode_append(tk, docs[d], lens[d], 0, &b);
            for (int64_t i = 0; i < b.n; i++)
                hash = (hash ^ (uint64_t)b.ids[i]) * 1099511628211ULL;
            n_ids += b.n;
        }
        double dt = time_now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    /* Offsets cost, once. */
    b.want_offsets = 1;
    double t0 = time_now();
    for (int64_t d = 0; d < n_docs; d++) {
        b.n = 0;
        tokenizer_encode_append(tk, docs[d], lens[d], 0, &b);
    }
    double dt_off = time_now() - t0;
    printf("{\"impl\": \"csft\", \"load_s\": %.3f, \"load_cpu_s\": %.3f, \"docs\": %lld, \"bytes\": %zu, "
           "\"ids\": %lld, \"hash\": \"%016llx\", \"encode_s\": %.3f, \"mb_per_s\": %.2f, \"mb_per_s_cpu\": "
           "%.2f, "
           "\"mb_per_s_offsets\": %.2f}\n",
           best_load, best_load_cpu, (long long)n_docs, bytes, (long long)n_ids, (unsigned long long)hash,
           best, bytes / best / 1e6, bytes / best_cpu / 1e6, bytes / dt_off / 1e6);
    tokenizer_buf_free(&b);
    for (int64_t d = 0; d < n_docs; d++)
        free(docs[d]);
    free(docs);
    free(lens);
    tokenizer_free(tk);
    return 0;
}
