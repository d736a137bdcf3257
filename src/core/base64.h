/* base64: RFC 4648 encoding (standard alphabet, '=' padding), for binary values shown in JSON
 * as {"$bytes": "<base64>"}, the convention of HF datasets' JSON export of binary columns. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for n bytes, without the terminating NUL. */
size_t base64_len(size_t n);
/* Writes base64_len(n) characters and a NUL to out (base64_len(n) + 1 bytes). */
void base64_encode(char *out, const uint8_t *in, size_t n);
