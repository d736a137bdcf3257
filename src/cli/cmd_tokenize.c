/* csft tokenize: encode text to ids (or --decode ids to text) with a model's tokenizer, and
 * --check a golden JSONL file of {text, ids, decoded} lines, printing "N passed, M failed"
 * and exiting non-zero on any failure. Chat-template golden lines ({template, messages, tools,
 * add_generation_prompt, kwargs, rendered, ids, assistant_spans}) are rendered with the
 * template of the tokenizer chosen by the line's template name (PREFIX=PATH), or the built-in
 * Alpaca prompts, and checked for text, assistant spans (code points) and ids. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "core/nulstr.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: csft tokenize --tokenizer PATH [options] [TEXT...]\n"
            "  Prints the ids of each TEXT (one line each), or of stdin when no TEXT is given.\n\n"
            "options:\n"
            "  --tokenizer PATH     model folder, tokenizer.json, or vocab.json (merges.txt beside it or\n"
            "                       --merges); may be given as PREFIX=PATH (a bare PATH serves every line)\n"
            "  --merges FILE        merges.txt for a vocab.json --tokenizer\n"
            "  --config FILE        tokenizer_config.json (added tokens) for a vocab.json --tokenizer\n"
            "  --decode             read ids (spaces, commas or a JSON array) and print the text\n"
            "  --skip-special       with --decode: drop special added tokens\n"
            "  --split-special      encode special-token text (\"<|im_end|>\") as ordinary text\n"
            "  --offsets            print one token per line: id, byte start, byte end, token\n"
            "  --check FILE.jsonl   check every {text, ids, decoded} line: ids of text and decode of ids;\n"
            "                       chat-template lines {template, messages, ..., rendered, ids, assistant_spans}\n"
            "                       are rendered with the template of the --tokenizer whose PREFIX starts the\n"
            "                       template name (alpaca*: the built-in prompts) and checked too\n"
            "  --stats              print load time and encode speed to stderr\n");
}

static int load_one(struct tokenizer **tk, const char *path, const char *merges, const char *config) {
    if (merges) return tokenizer_load_files(tk, path, merges, config);
    return tokenizer_load(tk, path);
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (cap - n - 1 == 0) buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
}

static int encode_print(const struct tokenizer *tk, const char *text, size_t len, int flags, int offsets) {
    struct tokenizer_buf b = {0};
    b.want_offsets = offsets;
    if (tokenizer_encode_append(tk, text, len, flags, &b)) return -1;
    if (offsets) {
        for (int64_t i = 0; i < b.n; i++) {
            const char *tok = tokenizer_id_to_token(tk, b.ids[i]);
            printf("%d\t%lld\t%lld\t%s\n", b.ids[i], (long long)b.starts[i], (long long)b.ends[i],
                   tok ? tok : "");
        }
    } else {
        print_ids(b.ids, b.n);
    }
    tokenizer_buf_free(&b);
    return 0;
}

static int decode_stdin(const struct tokenizer *tk, int skip_special) {
    size_t len;
    char *in = read_stdin(&len);
    int64_t n = 0, cap = 256;
    int32_t *ids = xmalloc((size_t)cap * sizeof(int32_t));
    char *p = in;
    while (*p) {
        if (strchr(" \t\r\n,[]", *p)) {
            p++;
            continue;
        }
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            free(in);
            free(ids);
            return err_set("stdin: expected ids (integers), found \"%.20s\"", p);
        }
        if (n == cap) ids = xrealloc(ids, (size_t)(cap *= 2) * sizeof(int32_t));
        ids[n++] = (int32_t)v;
        p = end;
    }
    free(in);
    char *text;
    size_t tl;
    int rc = tokenizer_decode(tk, ids, n, skip_special, &text, &tl);
    free(ids);
    if (rc) return -1;
    fwrite(text, 1, tl, stdout);
    printf("\n");
    free(text);
    return 0;
}

/* Checks one {text, ids, decoded} line; prints what differs. Returns 1 if it passed. */
static int check_line(const struct tokenizer *tk, const char *file, int64_t line_no, const cJSON *o) {
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
    const cJSON *decoded = cJSON_GetObjectItemCaseSensitive(o, "decoded");
    if (!cJSON_IsString(text) || !cJSON_IsArray(ids)) {
        fprintf(stderr, "%s:%lld: expected \"text\" (string) and \"ids\" (array)\n", file,
                (long long)line_no);
        return 0;
    }
    int64_t ng = cJSON_GetArraySize(ids);
    int32_t *gold = xmalloc((size_t)(ng ? ng : 1) * sizeof(int32_t));
    int64_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ids) gold[k++] = (int32_t)it->valuedouble;
    int ok = 1;
    struct tokenizer_buf b = {0};
    char *txt = xstrdup(text->valuestring); /* U+0000 travels as C0 80 (core/nulstr.h) */
    size_t txt_len = nul_decode(txt, strlen(txt));
    if (tokenizer_encode_append(tk, txt, txt_len, 0, &b)) {
        fprintf(stderr, "%s:%lld: %s\n", file, (long long)line_no, err_msg());
        ok = 0;
    } else if (b.n != ng || memcmp(b.ids, gold, (size_t)ng * sizeof(int32_t)) != 0) {
        int64_t d = 0;
        while (d < b.n && d < ng && b.ids[d] == gold[d])
            d++;
        fprintf(stderr,
                "%s:%lld: ids differ at %lld: got %lld ids [..., %d, ...], expected %lld [..., %d, ...]\n",
                file, (long long)line_no, (long long)d, (long long)b.n, d < b.n ? b.ids[d] : -1,
                (long long)ng, d < ng ? gold[d] : -1);
        ok = 0;
    }
    tokenizer_buf_free(&b);
    free(txt);
    if (cJSON_IsString(decoded)) {
        char *out;
        size_t ol;
        if (tokenizer_decode(tk, gold, ng, 0, &out, &ol)) {
            fprintf(stderr, "%s:%lld: decode failed: %s\n", file, (long long)line_no, err_msg());
            ok = 0;
        } else {
            char *want = xstrdup(decoded->valuestring);
            size_t wl = nul_decode(want, strlen(want));
            if (ol != wl || memcmp(out, want, ol) != 0) {
                fprintf(stderr, "%s:%lld: decoded text differs: got \"%.80s\", expected \"%.80s\"\n", file,
                        (long long)line_no, out, decoded->valuestring);
                ok = 0;
            }
            free(want);
            free(out);
        }
    }
    free(gold);
    return ok;
}

/* Tokenizers by template-name prefix (--tokenizer qwen3=DIR); a bare PATH serves the rest. */
struct tok_choice {
    const char *prefix, *path;
    struct tokenizer *tk;
};

static struct tok_choice *choose(struct tok_choice *c, int n, const char *name) {
    struct tok_choice *best = NULL;
    for (int i = 0; i < n; i++) {
        size_t lp = c[i].prefix ? strlen(c[i].prefix) : 0;
        if (c[i].prefix && strncmp(name, c[i].prefix, lp) == 0 && (!best || !best->prefix)) best = &c[i];
        if (!c[i].prefix && !best) best = &c[i];
    }
    return best;
}

static int64_t utf8_codepoints(const char *s, size_t n) {
    int64_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

/* Renders one chat-template golden line and compares text, spans and ids. 1 if it passed. */
static int check_template_line(struct tok_choice *choices, int n_choices, const char *file, int64_t line_no,
                               const cJSON *o) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "template"));
    struct tok_choice *c = name ? choose(choices, n_choices, name) : NULL;
    if (!c) {
        fprintf(stderr, "%s:%lld: no --tokenizer for template \"%s\" (give PREFIX=PATH)\n", file, (long long)line_no,
                name ? name : "?");
        return 0;
    }
    if (!c->tk && tokenizer_load(&c->tk, c->path)) {
        fprintf(stderr, "%s:%lld: %s\n", file, (long long)line_no, err_msg());
        return 0;
    }
    struct chat_template *t = NULL;
    int rc;
    if (strncmp(name, "alpaca", 6) == 0) {
        rc = chat_template_builtin(&t, name);
    } else {
        char *cfg = path_join(c->path, "tokenizer_config.json");
        rc = chat_template_load(&t, cfg);
        free(cfg);
    }
    if (rc) {
        fprintf(stderr, "%s:%lld: template %s: %s\n", file, (long long)line_no, name, err_msg());
        return 0;
    }
    chat_template_use_tokenizer(t, c->tk);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(o, "tools"), *rendered = cJSON_GetObjectItemCaseSensitive(o, "rendered");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(o, "error"), *ids = cJSON_GetObjectItemCaseSensitive(o, "ids");
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(o, "assistant_spans");
    char *out = NULL;
    struct chat_span *sp = NULL;
    int n_sp = 0, ok = 1;
    rc = chat_render(t, cJSON_GetObjectItemCaseSensitive(o, "messages"), cJSON_IsNull(tools) ? NULL : tools,
                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "add_generation_prompt")),
                     cJSON_GetObjectItemCaseSensitive(o, "kwargs"), &out, &sp, &n_sp);
    if (cJSON_IsString(error)) { /* the template must fail, with Jinja's error class */
        char cls[64];
        snprintf(cls, sizeof cls, "%.*s", (int)strcspn(error->valuestring, ":"), error->valuestring);
        ok = rc != 0 && strstr(err_msg(), cls) != NULL;
        if (!ok) fprintf(stderr, "%s:%lld: expected %s, got %s\n", file, (long long)line_no, error->valuestring, rc ? err_msg() : "a rendering");
    } else if (rc) {
        fprintf(stderr, "%s:%lld: %s\n", file, (long long)line_no, err_msg());
        ok = 0;
    } else if (!cJSON_IsString(rendered) || strcmp(out, rendered->valuestring) != 0) {
        fprintf(stderr, "%s:%lld: rendering differs\n", file, (long long)line_no);
        ok = 0;
    } else {
        int ns = cJSON_GetArraySize(spans);
        ok = cJSON_IsArray(spans) && ns == n_sp;
        for (int i = 0; ok && i < ns; i++) {
            const cJSON *g = cJSON_GetArrayItem(spans, i);
            ok = utf8_codepoints(out, sp[i].start) == (int64_t)cJSON_GetArrayItem(g, 0)->valuedouble &&
                 utf8_codepoints(out, sp[i].end) == (int64_t)cJSON_GetArrayItem(g, 1)->valuedouble;
        }
        if (!ok) fprintf(stderr, "%s:%lld: assistant spans differ\n", file, (long long)line_no);
        cJSON *tl = cJSON_CreateObject();
        cJSON_AddStringToObject(tl, "text", out);
        cJSON_AddItemToObject(tl, "ids", cJSON_Duplicate(ids, 1));
        if (ok && !check_line(c->tk, file, line_no, tl)) ok = 0;
        cJSON_Delete(tl);
    }
    free(out), free(sp);
    chat_template_free(t);
    return ok;
}

static int check_file(const struct tokenizer *tk, const char *file, struct tok_choice *choices, int n_choices) {
    size_t len;
    char *data = file_read_all(file, &len);
    if (!data) return -1;
    int64_t passed = 0, failed = 0, line_no = 0;
    char *p = data;
    while (p < data + len) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line_no++;
        char *q = p;
        p = nl ? nl + 1 : data + len;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (!*q) continue;
        q[nul_unescape_json(q, strlen(q))] = 0; /* \u0000 -> C0 80, kept by cJSON (core/nulstr.h) */
        cJSON *o = cJSON_Parse(q);
        if (!cJSON_IsObject(o)) {
            fprintf(stderr, "%s:%lld: not a JSON object\n", file, (long long)line_no);
            failed++;
        } else if (cJSON_GetObjectItemCaseSensitive(o, "template")) {
            if (check_template_line(choices, n_choices, file, line_no, o))
                passed++;
            else
                failed++;
        } else {
            if (check_line(tk, file, line_no, o))
                passed++;
            else
                failed++;
        }
        cJSON_Delete(o);
    }
    free(data);
    printf("%lld passed, %lld failed\n", (long long)passed, (long long)failed);
    return failed ? 1 : 0;
}

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL, *merges = NULL, *config = NULL, *check = NULL;
    struct tok_choice choices[16];
    int n_choices = 0;
    int decode = 0, skip_special = 0, flags = 0, offsets = 0, stats = 0, n_text = 0;
    char **texts = xmalloc((size_t)argc * sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "--tokenizer") == 0 && has_val) {
            /* PREFIX=PATH chooses a tokenizer by a chat-template line's name; text lines (the only
             * kind checked here) use a bare PATH, else the first one given. */
            const char *v = argv[++i], *eq = strchr(v, '='), *slash = strchr(v, '/');
            int prefixed = eq && eq > v && (!slash || slash > eq);
            if (!prefixed)
                path = v;
            else if (!path)
                path = eq + 1;
            if (n_choices < 16) {
                char *pre = prefixed ? xasprintf("%.*s", (int)(eq - v), v) : NULL;
                choices[n_choices++] = (struct tok_choice){pre, prefixed ? eq + 1 : v, NULL};
            }
        } else if (strcmp(a, "--merges") == 0 && has_val) {
            merges = argv[++i];
        } else if (strcmp(a, "--config") == 0 && has_val) {
            config = argv[++i];
        } else if (strcmp(a, "--check") == 0 && has_val) {
            check = argv[++i];
        } else if (strcmp(a, "--decode") == 0) {
            decode = 1;
        } else if (strcmp(a, "--skip-special") == 0) {
            skip_special = 1;
        } else if (strcmp(a, "--split-special") == 0) {
            flags |= TOKENIZER_SPLIT_SPECIAL;
        } else if (strcmp(a, "--offsets") == 0) {
            offsets = 1;
        } else if (strcmp(a, "--stats") == 0) {
            stats = 1;
        } else if (strcmp(a, "--") == 0) {
            while (++i < argc)
                texts[n_text++] = argv[i];
        } else if (a[0] == '-' && a[1] == '-') {
            free(texts);
            fprintf(stderr, "csft tokenize: unknown option %s (or missing value)\n", a);
            usage(stderr);
            return 2;
        } else {
            texts[n_text++] = argv[i];
        }
    }
    if (!path) {
        free(texts);
        fprintf(stderr, "csft tokenize: --tokenizer PATH is required\n");
        usage(stderr);
        return 2;
    }
    struct tokenizer *tk;
    double t0 = time_now();
    if (load_one(&tk, path, merges, config)) {
        for (int i = 0; i < n_choices; i++) free((char *)choices[i].prefix);
        free(texts);
        return cli_fail("tokenize");
    }
    if (stats)
        fprintf(stderr, "loaded %s in %.3f s (vocab size %d)\n", path, time_now() - t0,
                tokenizer_vocab_size(tk));
    int rc = 0;
    if (check) {
        rc = check_file(tk, check, choices, n_choices);
        if (rc < 0) rc = cli_fail("tokenize");
    } else if (decode) {
        if (decode_stdin(tk, skip_special)) rc = cli_fail("tokenize");
    } else if (n_text) {
        for (int i = 0; i < n_text; i++)
            encode_print(tk, texts[i], strlen(texts[i]), flags, offsets);
    } else {
        size_t len;
        char *in = read_stdin(&len);
        double t1 = time_now();
        if (encode_print(tk, in, len, flags, offsets)) rc = cli_fail("tokenize");
        if (stats) {
            double dt = time_now() - t1;
            fprintf(stderr, "encoded %zu bytes in %.3f s (%.1f MB/s, including printing)\n", len, dt,
                    dt > 0 ? len / dt / 1e6 : 0.0);
        }
        free(in);
    }
    tokenizer_free(tk);
    for (int i = 0; i < n_choices; i++) {
        free((char *)choices[i].prefix);
        if (choices[i].tk) tokenizer_free(choices[i].tk);
    }
    free(texts);
    return rc;
}
