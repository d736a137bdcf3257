/* csft template: renders a chat template on a conversation, as transformers'
 * apply_chat_template(tokenize=False) would, and optionally prints the assistant spans
 * (the text a response-only loss trains on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "core/nulstr.h"
#include "tok/chat.h"
#include "tok/jinja_value.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: csft template --template T --messages JSON [options]\n\n"
            "Renders a chat template and prints the text exactly (no trailing newline added).\n\n"
            "  --template T        a built-in (chatml, alpaca, alpaca_with_input, alpaca_no_input), a model\n"
            "                      folder or tokenizer_config.json (its chat_template and special tokens),\n"
            "                      a .jinja file, or NAME for DIR/NAME.jinja with --templates DIR\n"
            "  --templates DIR     folder of NAME.jinja files\n"
            "  --messages JSON     the conversation: a JSON array, @FILE, or - for stdin\n"
            "  --tools JSON        tool definitions (JSON array or @FILE); default None\n"
            "  --add-generation-prompt   end with the assistant header\n"
            "  --var K=V           extra template variable (repeatable); V is parsed as JSON when it\n"
            "                      is valid JSON (true, 3, \"x\", [..]), else taken as a string.\n"
            "                      Examples: --var enable_thinking=false --var bos_token='<s>'\n"
            "  --spans             after the text, print each assistant span [start, end) in bytes\n"
            "                      and code points, with its text: the turn after its header, up to and\n"
            "                      with its end-of-turn token, derived from the template itself\n"
            "                      ({%% generation %%} blocks, else prefix renderings; docs/data.md)\n"
            "  --header S --end S  use these fixed header / end-of-turn markers instead\n");
}

static char *read_arg(const char *v) {
    if (!strcmp(v, "-")) {
        size_t cap = 4096, n = 0;
        char *b = xmalloc(cap);
        size_t k;
        while ((k = fread(b + n, 1, cap - n - 1, stdin)) > 0) {
            n += k;
            if (n + 1 >= cap) b = xrealloc(b, cap *= 2);
        }
        b[n] = 0;
        return b;
    }
    if (v[0] == '@') return file_read_all(v + 1, NULL);
    return xstrdup(v);
}

static cJSON *parse_json_arg(const char *flag, const char *v) {
    char *s = read_arg(v);
    if (!s) return NULL;
    s[nul_unescape_json(s, strlen(s))] = 0; /* \u0000 kept as C0 80 (core/nulstr.h) */
    cJSON *j = cJSON_Parse(s);
    if (!j) err_set("%s: not valid JSON near \"%.40s\"", flag, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : s);
    free(s);
    return j;
}

static int load_template(struct chat_template **t, const char *spec, const char *dir) {
    if (!strcmp(spec, "chatml") || !strncmp(spec, "alpaca", 6)) return chat_template_builtin(t, spec);
    if (dir_exists(spec) || (strlen(spec) > 5 && !strcmp(spec + strlen(spec) - 5, ".json")))
        return chat_template_load(t, spec);
    char *path = NULL;
    if (file_exists(spec))
        path = xstrdup(spec);
    else if (dir) {
        char *name = xasprintf("%s.jinja", spec);
        path = path_join(dir, name);
        free(name);
    }
    if (!path || !file_exists(path)) {
        err_set("--template %s: not a built-in, a file or a model folder%s", spec,
                dir ? "" : " (give --templates DIR for NAME.jinja)");
        free(path);
        return -1;
    }
    char *src = file_read_all(path, NULL);
    int rc = src ? chat_template_parse(t, src, path) : -1;
    free(src);
    free(path);
    return rc;
}

int cmd_template(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *tspec = NULL, *tdir = NULL, *msgs_arg = NULL, *tools_arg = NULL, *header = NULL, *end = NULL;
    int agp = 0, want_spans = 0, rc = 1;
    cJSON *vars = cJSON_CreateObject(), *msgs = NULL, *tools = NULL;
    struct chat_template *t = NULL;
    char *out = NULL;
    struct chat_span *sp = NULL;
    int n_sp = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--add-generation-prompt"))
            agp = 1;
        else if (!strcmp(a, "--spans"))
            want_spans = 1;
        else if (has_val && !strcmp(a, "--template"))
            tspec = argv[++i];
        else if (has_val && !strcmp(a, "--templates"))
            tdir = argv[++i];
        else if (has_val && !strcmp(a, "--messages"))
            msgs_arg = argv[++i];
        else if (has_val && !strcmp(a, "--tools"))
            tools_arg = argv[++i];
        else if (has_val && !strcmp(a, "--header"))
            header = argv[++i];
        else if (has_val && !strcmp(a, "--end"))
            end = argv[++i];
        else if (has_val && !strcmp(a, "--var")) {
            const char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                err_set("--var %s: expected KEY=VALUE", kv);
                goto done;
            }
            char *key = xasprintf("%.*s", (int)(eq - kv), kv);
            cJSON *v = cJSON_Parse(eq + 1);
            if (!v) v = cJSON_CreateString(eq + 1);
            cJSON_DeleteItemFromObjectCaseSensitive(vars, key);
            cJSON_AddItemToObject(vars, key, v);
            free(key);
        } else {
            err_set("unknown or incomplete option '%s' (see csft template --help)", a);
            goto done;
        }
    }
    if (!tspec) {
        err_set("--template is required (see csft template --help)");
        goto done;
    }
    if (load_template(&t, tspec, tdir)) goto done;
    if (header || end) {
        if (!header || !end) {
            err_set("--header and --end go together");
            goto done;
        }
        chat_template_set_markers(t, header, end);
    }
    if (msgs_arg && !(msgs = parse_json_arg("--messages", msgs_arg))) goto done;
    if (tools_arg && !(tools = parse_json_arg("--tools", tools_arg))) goto done;
    if (!msgs) msgs = cJSON_CreateArray();
    if (chat_render(t, msgs, tools, agp, vars, &out, want_spans ? &sp : NULL, want_spans ? &n_sp : NULL))
        goto done;
    {
        char *raw = xstrdup(out); /* U+0000 written as the NUL byte */
        fwrite(raw, 1, nul_decode(raw, strlen(raw)), stdout);
        free(raw);
    }
    if (want_spans) {
        printf("\n--- %d assistant span(s): [start, end) bytes | code points ---\n", n_sp);
        for (int i = 0; i < n_sp; i++) {
            printf("%d: [%zu, %zu) | [%lld, %lld) ", i, sp[i].start, sp[i].end,
                   (long long)utf8_cp_len(out, sp[i].start), (long long)utf8_cp_len(out, sp[i].end));
            cJSON *s = cJSON_CreateString("");
            char *txt = xasprintf("%.*s", (int)(sp[i].end - sp[i].start), out + sp[i].start);
            cJSON_SetValuestring(s, txt);
            char *js = nul_json_print(s);
            printf("%s\n", js);
            free(js);
            free(txt);
            cJSON_Delete(s);
        }
    }
    rc = 0;
done:
    if (rc) cli_fail("template");
    free(out);
    free(sp);
    chat_template_free(t);
    cJSON_Delete(vars);
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    return rc;
}
