/* cmd_data_convert: `csft data convert --to mindrecord --out PATH FILE...` writes the records of
 * any dataset csft reads as MindRecord files (+ .db) that MindSpore's MindDataset reads: the
 * schema comes from --schema, from a MindRecord source (with its sizes, desc and index fields,
 * so a MindRecord file set is rewritten byte for byte), or is inferred from the first record.
 * With --config the configured dataset is tokenized as training would and written in
 * MindFormers' input_ids + labels layout (llama_preprocess.py), padded to seq_length + 1. */
#include "cli/cmd_data_convert.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_config.h"
#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "data/mindrecord.h"
#include "data/mindrecord_write.h"
#include "data/reader.h"
#include "model/model_config.h"
#include "train/pipeline.h"

static void convert_usage(FILE *f) {
    fprintf(
        f,
        "usage: csft data convert --to mindrecord --out PATH [options] FILE...\n"
        "       csft data convert --to mindrecord --out PATH --config run.yaml [--set K=V]... [--eval]\n\n"
        "Writes MindRecord files (format 3.0 unless --version 2.0) and their .db index, as MindSpore's\n"
        "FileWriter does, so MindSpore / MindFormers (MindDataset, dataset_dir) read them.\n"
        "FILE...: any dataset csft reads (JSON/JSONL, Parquet, Arrow, MindRecord). The schema is\n"
        "  --schema FILE.json ({\"field\": {\"type\": \"int32\", \"shape\": [-1]}, ...}); else a MindRecord\n"
        "  source's own (its header/page sizes, desc and index fields too); else inferred from the first\n"
        "  record (int lists -> int32 or int64 [-1], float lists -> float32 [-1], ints -> int64,\n"
        "  floats -> float64, strings -> string, {\"$bytes\": ...} -> bytes).\n"
        "--config: the configured train_dataset (or eval_dataset with --eval) tokenized as training\n"
        "  does, written as MindFormers' input_ids + labels (-100 = not trained), int32, padded to\n"
        "  seq_length + 1 with the pad token (labels -100), as llama_preprocess.py writes.\n"
        "  --out PATH           the data file (with --shards N: PATH0..PATH(N-1))\n"
        "  --shards N           number of files (default 1)\n"
        "  --header-size B      header bytes (default 16777216, or the source's)\n"
        "  --page-size B        page bytes (default 33554432, or the source's)\n"
        "  --rows-per-write N   rows per FileWriter.write_raw_data call (default 1, as MindFormers'\n"
        "                       scripts); 'all' = one call with every row (page layout of a single call)\n"
        "  --version V          3.0 (default; integer arrays compressed) or 2.0\n"
        "  --desc TEXT          the schema description\n"
        "  --no-db              do not write the .db index files\n");
}

/* Infers a schema from one record (see usage). */
static cJSON *infer_schema(const cJSON *rec) {
    cJSON *s = cJSON_CreateObject();
    for (const cJSON *c = rec->child; c; c = c->next) {
        cJSON *f = cJSON_CreateObject();
        const char *type = "string";
        if (cJSON_IsArray(c)) {
            int is_float = 0, big = 0;
            cJSON *shape = cJSON_AddArrayToObject(f, "shape");
            const cJSON *inner = c; /* nested lists: the outer dims of this record, the innermost -1 */
            while (cJSON_IsArray(inner->child) && cJSON_GetArraySize(shape) < 15) {
                cJSON_AddItemToArray(shape, cJSON_CreateNumber(cJSON_GetArraySize(inner)));
                inner = inner->child;
            }
            cJSON_AddItemToArray(shape, cJSON_CreateNumber(-1));
            for (const cJSON *e = inner->child; e; e = e->next) {
                if (cJSON_IsRaw(e))
                    big |= !strpbrk(e->valuestring, ".eEnN"), is_float |= !!strpbrk(e->valuestring, ".eEnN");
                else if (cJSON_IsNumber(e) && e->valuedouble != floor(e->valuedouble))
                    is_float = 1;
                else if (cJSON_IsNumber(e) && fabs(e->valuedouble) > 2147483647.0)
                    big = 1;
            }
            type = is_float ? "float32" : big ? "int64" : "int32";
        } else if (cJSON_IsNumber(c) || cJSON_IsRaw(c)) {
            int is_float =
                cJSON_IsRaw(c) ? !!strpbrk(c->valuestring, ".eEnN") : c->valuedouble != floor(c->valuedouble);
            type = is_float ? "float64" : "int64";
        } else if (cJSON_IsObject(c) && cJSON_GetObjectItemCaseSensitive(c, "$bytes"))
            type = "bytes";
        cJSON_AddStringToObject(f, "type", type);
        cJSON_AddItemToObject(s, c->string, f);
    }
    return s;
}

/* The configured dataset, tokenized, as input_ids + labels rows. */
static int convert_config(int argc, char **argv, const char *out, struct mindrecord_write_options *wo) {
    int use_eval = 0, n = 0;
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--eval") == 0)
            use_eval = 1;
        else
            args[n++] = argv[i];
    }
    struct run_config cfg;
    int rc = cli_load_config(n, args, "data convert", NULL, 0, -1, &cfg);
    free(args);
    if (rc) return rc;
    const struct config_dataset *d = use_eval ? &cfg.eval_dataset : &cfg.train_dataset;
    struct model_config mc, *mcp = NULL;
    char *mj = path_join(cfg.load_checkpoint, "config.json");
    if (file_exists(mj) && !model_config_load(&mc, cfg.load_checkpoint, 0)) mcp = &mc;
    free(mj);
    struct pipeline p;
    struct dataset *ds = NULL;
    if (pipeline_open_lazy(&p, &cfg, d, mcp, cfg.run_mode == RUN_MODE_TRAIN)) {
        config_free(&cfg);
        return cli_fail("data convert");
    }
    if (pipeline_dataset(&p, d, &ds)) {
        pipeline_close(&p);
        config_free(&cfg);
        return cli_fail("data convert");
    }
    cJSON *schema = cJSON_Parse("{\"input_ids\":{\"type\":\"int32\",\"shape\":[-1]},"
                                "\"labels\":{\"type\":\"int32\",\"shape\":[-1]}}");
    struct mindrecord_writer *w;
    cJSON *none = cJSON_CreateNull();
    rc = mindrecord_writer_open(&w, out, schema, none, wo);
    int64_t L = d->seq_length > 0 ? d->seq_length + 1 : 0;
    int32_t pad = p.pad_id >= 0 ? p.pad_id : 0;
    for (int64_t i = 0; !rc && i < ds->n; i++) {
        int64_t len = dataset_len(ds, i), o = ds->offsets[i], T = len > L ? len : L;
        cJSON *row = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(row, "input_ids"),
              *lab = cJSON_AddArrayToObject(row, "labels");
        for (int64_t t = 0; t < T; t++) {
            cJSON_AddItemToArray(ids, cJSON_CreateNumber(t < len ? ds->ids[o + t] : pad));
            cJSON_AddItemToArray(lab, cJSON_CreateNumber(t < len && ds->mask[o + t] ? ds->ids[o + t] : -100));
        }
        rc = mindrecord_writer_add(w, row);
        cJSON_Delete(row);
    }
    if (w) rc = rc ? (mindrecord_writer_abort(w), -1) : mindrecord_writer_close(w);
    if (!rc) fprintf(stderr, "csft data convert: %lld rows written to %s\n", (long long)ds->n, out);
    cJSON_Delete(schema);
    cJSON_Delete(none);
    dataset_free(ds);
    pipeline_close(&p);
    config_free(&cfg);
    return rc ? cli_fail("data convert") : 0;
}

int cmd_data_convert(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        convert_usage(stdout);
        return 0;
    }
    const char *to = NULL, *out = NULL, *schema_file = NULL, *version = NULL, *desc = NULL;
    long long shards = 1, hs = 0, ps = 0, rpw = 1;
    int no_db = 0, use_config = 0, n_files = 0;
    char **files = xcalloc((size_t)argc + 1, sizeof *files), **rest = xcalloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    rest[n_rest++] = "convert";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--to") == 0)
            to = v, i++;
        else if (strcmp(a, "--out") == 0)
            out = v, i++;
        else if (strcmp(a, "--schema") == 0)
            schema_file = v, i++;
        else if (strcmp(a, "--version") == 0)
            version = v, i++;
        else if (strcmp(a, "--desc") == 0)
            desc = v, i++;
        else if (strcmp(a, "--no-db") == 0)
            no_db = 1;
        else if (strcmp(a, "--shards") == 0)
            bad = cli_parse_count(a, v, &shards), i++;
        else if (strcmp(a, "--header-size") == 0)
            bad = cli_parse_count(a, v, &hs), i++;
        else if (strcmp(a, "--page-size") == 0)
            bad = cli_parse_count(a, v, &ps), i++;
        else if (strcmp(a, "--rows-per-write") == 0) {
            if (v && strcmp(v, "all") == 0)
                rpw = -1, i++;
            else
                bad = cli_parse_count(a, v, &rpw), i++;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "--set") == 0) {
            use_config |= strcmp(a, "--config") == 0;
            rest[n_rest++] = argv[i];
            if (v) rest[n_rest++] = argv[++i];
        } else if (strcmp(a, "--eval") == 0)
            rest[n_rest++] = argv[i];
        else if (a[0] == '-' && a[1])
            bad = err_set("unknown option '%s' (see csft data convert --help)", a);
        else
            files[n_files++] = argv[i];
        if (!bad && i >= argc) bad = err_set("%s needs a value", a);
        if (bad) goto usage_fail;
    }
    if (!to || strcmp(to, "mindrecord")) {
        err_set("--to mindrecord is required (the only target so far)");
        goto usage_fail;
    }
    if (!out || (!n_files && !use_config) || (n_files && use_config)) {
        err_set("give --out PATH and either input FILEs or --config (see csft data convert --help)");
        goto usage_fail;
    }
    if (version && strcmp(version, "2.0") && strcmp(version, "3.0")) {
        err_set("--version must be 2.0 or 3.0");
        goto usage_fail;
    }
    if (rpw == 0) rpw = 1;
    struct mindrecord_write_options wo = {.shard_num = (int)(shards > 1000 ? 1001 : shards),
                                          .header_size = hs,
                                          .page_size = ps,
                                          .rows_per_write = (int)(rpw > 1 << 30 ? 1 << 30 : rpw),
                                          .version2 = version && strcmp(version, "2.0") == 0,
                                          .no_db = no_db,
                                          .desc = desc};
    if (use_config) {
        int rc = convert_config(n_rest, rest, out, &wo);
        free(files), free(rest);
        return rc;
    }
    /* the schema: --schema, a MindRecord source's, or inferred from the first record */
    cJSON *schema = NULL, *index = NULL, *src_header = NULL;
    int rc = 0;
    if (schema_file) {
        size_t n;
        char *text = file_read_all(schema_file, &n);
        schema = text ? cJSON_ParseWithLength(text, n) : NULL;
        free(text);
        if (!cJSON_IsObject(schema))
            rc = err_set("%s: expected a JSON object {\"field\": {\"type\": ...}}", schema_file);
    } else if (mindrecord_sniff(files[0]) || mindrecord_dir_has_files(files[0])) {
        struct mindrecord *m;
        if (mindrecord_open(&m, files[0]))
            rc = -1;
        else {
            src_header = cJSON_Duplicate(mindrecord_header(m), 1);
            mindrecord_close(m);
            const cJSON *sc = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(src_header, "schema"), 0);
            schema = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(sc, "schema"), 1);
            index = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(src_header, "index_fields"), 1);
            if (cJSON_IsArray(index)) { /* [{"index_field": name, ...}] -> [name] */
                cJSON *names = cJSON_CreateArray();
                for (const cJSON *e = index->child; e; e = e->next) {
                    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "index_field");
                    if (cJSON_IsString(nm)) cJSON_AddItemToArray(names, cJSON_CreateString(nm->valuestring));
                }
                cJSON_Delete(index);
                index = names;
            }
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(sc, "desc");
            if (!wo.desc && cJSON_IsString(d)) wo.desc = d->valuestring;
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(src_header, "header_size"),
                        *p = cJSON_GetObjectItemCaseSensitive(src_header, "page_size"),
                        *v = cJSON_GetObjectItemCaseSensitive(src_header, "version");
            if (!hs && cJSON_IsNumber(h)) wo.header_size = (int64_t)h->valuedouble;
            if (!ps && cJSON_IsNumber(p)) wo.page_size = (int64_t)p->valuedouble;
            if (!version && cJSON_IsString(v)) wo.version2 = strcmp(v->valuestring, "2.0") == 0;
        }
    }
    struct mindrecord_writer *w = NULL;
    int64_t rows = 0;
    int inferred = 0;
    for (int k = 0; k < n_files && !rc; k++) {
        struct reader *r;
        if (reader_open(&r, files[k])) {
            rc = -1;
            break;
        }
        cJSON *rec;
        int got;
        while (!rc && (got = reader_next(r, &rec)) == 1) {
            if (!schema) schema = infer_schema(rec), inferred = 1;
            if (!w && mindrecord_writer_open(&w, out, schema, index, &wo)) rc = -1;
            if (!rc && mindrecord_writer_add(w, rec))
                rc = inferred
                         ? err_wrap("%s (schema inferred from the first record; give --schema)", files[k])
                         : err_wrap("%s", files[k]);
            cJSON_Delete(rec);
            rows++;
        }
        if (!rc && got < 0) rc = -1;
        reader_close(r);
    }
    if (!rc && !w && schema && mindrecord_writer_open(&w, out, schema, index, &wo)) rc = -1;
    if (!rc && !w) rc = err_set("no records in the input and no --schema: nothing to write");
    if (w) rc = rc ? (mindrecord_writer_abort(w), -1) : mindrecord_writer_close(w);
    if (!rc)
        fprintf(stderr, "csft data convert: %lld rows written to %s%s\n", (long long)rows, out,
                shards > 1 ? "0.." : "");
    cJSON_Delete(schema), cJSON_Delete(index), cJSON_Delete(src_header);
    free(files), free(rest);
    return rc ? cli_fail("data convert") : 0;
usage_fail:
    free(files), free(rest);
    fprintf(stderr, "csft data convert: %s\n", err_msg());
    return 2;
}
