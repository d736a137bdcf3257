/* yaml_guard: a streaming pre-pass over YAML text before libyaml builds its document. Refuses
 * what would make loading or walking the document hang: nesting deeper than YAML_MAX_DEPTH
 * (libyaml's flow parsing is quadratic in the depth), and anchors/aliases or `<<` merges whose
 * expansion exceeds YAML_MAX_NODES nodes (nine `<<` per level cost 9^depth). */
#pragma once
#include <stddef.h>

enum { YAML_MAX_DEPTH = 64, YAML_MAX_NODES = 100000, YAML_MAX_ANCHORS = 10000 };

/* 0 when text is within the limits (or is not valid YAML: the loader reports that), else -1
 * with err naming name:line and the limit. */
int yaml_guard(const char *text, size_t len, const char *name);
