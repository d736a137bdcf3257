/* config_keys: the table of every config key (type, default, range, choices, help) and the
 * hints for foreign keys, read by the loader in config.c; docs/config.md is generated from it
 * (config_print_markdown), so the reference cannot drift. Private to config.c and this file. */
#pragma once
#include <stddef.h>

enum key_type {
    KT_BOOL,
    KT_INT,
    KT_INT64,
    KT_FLOAT,
    KT_STRING,
    KT_ENUM,
    KT_STR_LIST,
    KT_TARGETS,
    KT_FLOAT2,
    KT_MAP
};

enum {
    K_MIN = 1, /* value >= min (or > min with K_MIN_EXCL) */
    K_MAX = 2, /* value <= max (or < max with K_MAX_EXCL) */
    K_MIN_EXCL = 4,
    K_MAX_EXCL = 8,
    K_ONLY_DEFAULT = 16 /* any other value: "not supported yet" */
};

struct choice {
    const char *name; /* the first name of a value is the canonical spelling */
    int value;
};

struct key_def {
    const char *name; /* relative to its section */
    enum key_type type;
    size_t off;
    const char *def; /* YAML text of the default */
    unsigned flags;
    double min, max;
    const struct choice *choices;
    const char *alias; /* another accepted spelling of the last component */
    const char *help;
};

struct section {
    const char *prefix; /* "" for keys spelled in full */
    size_t off;
    const struct key_def *keys;
    int n_keys;
    const char *override_name, *override_def; /* one default that differs in this section */
};

/* Choice lists the loader names values with (the first name of a value is its spelling). */
extern const struct choice cfg_run_modes[], cfg_formats[], cfg_schedules[];
/* The sections in dump order, headings for help and docs, and MindSpore keys with where their
 * setting lives in csft ("*" globs). */
extern const struct section cfg_sections[];
extern const char *const cfg_section_titles[][2];
extern const char *const cfg_foreign_hints[][2];
extern const size_t cfg_n_sections, cfg_n_section_titles, cfg_n_foreign_hints;
