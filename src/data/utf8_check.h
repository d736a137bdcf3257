/* utf8_check: strict UTF-8 validation for dataset text (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). Shared by the JSON and Arrow readers, which report
 * the first bad byte with the file and row. */
#pragma once
#include <stddef.h>

/* Returns n if s[0..n) is valid UTF-8, else the offset of the first byte of the first
 * invalid sequence. */
size_t utf8_check(const char *s, size_t n);
