#include "core/base64.h"

size_t base64_len(size_t n) { return (n + 2) / 3 * 4; }

void base64_encode(char *out, const uint8_t *in, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = abc[v >> 18], *out++ = abc[(v >> 12) & 63], *out++ = abc[(v >> 6) & 63], *out++ = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = abc[v >> 18], *out++ = abc[(v >> 12) & 63], *out++ = '=', *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = abc[v >> 18], *out++ = abc[(v >> 12) & 63], *out++ = abc[(v >> 6) & 63], *out++ = '=';
    }
    *out = 0;
}
