/* tfevents: TFRecord framing + hand-encoded Event/Summary protobufs; see tfevents.h.
 * Protobuf wire format: key = (field << 3) | wire type; wire types used here are 0 (varint),
 * 1 (fixed64, little-endian), 2 (length-delimited: varint length + bytes), 5 (fixed32).
 * Fields at their proto3 default (step 0) are omitted, as protobuf's own encoder does. */
#include "io/tfevents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"

struct tfevents {
    FILE *f;
    char *path;
    int failed; /* a write failed; reported once, then every call fails */
};

/* ---------------------------------------------------------------- CRC32C */

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0);
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t tfevents_crc32c(const void *data, size_t n) {
    if (!crc_ready) crc_init(); /* idempotent: a racing second init writes the same values */
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tfevents_masked_crc32c(const void *data, size_t n) {
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---------------------------------------------------------------- protobuf */

struct pb {
    uint8_t *buf;
    size_t cap, len;
    int overflow;
};

static void pb_byte(struct pb *b, uint8_t x) {
    if (b->len < b->cap)
        b->buf[b->len] = x;
    else
        b->overflow = 1;
    b->len++;
}

static void pb_varint(struct pb *b, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(b, (uint8_t)v);
}

static void pb_key(struct pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_fixed(struct pb *b, uint64_t v, int nbytes) {
    for (int i = 0; i < nbytes; i++)
        pb_byte(b, (uint8_t)(v >> (8 * i)));
}

static void pb_bytes(struct pb *b, int field, const void *data, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    for (size_t i = 0; i < n; i++)
        pb_byte(b, ((const uint8_t *)data)[i]);
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80)
        v >>= 7, n++;
    return n;
}

size_t tfevents_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                             const char *file_version, const char *tag, float value) {
    struct pb b = {buf, cap, 0, 0};
    uint64_t wt;
    memcpy(&wt, &wall_time, 8);
    pb_key(&b, 1, 1); /* Event.wall_time */
    pb_fixed(&b, wt, 8);
    if (step != 0) {
        pb_key(&b, 2, 0); /* Event.step */
        pb_varint(&b, (uint64_t)step);
    }
    if (file_version) {
        pb_bytes(&b, 3, file_version, strlen(file_version)); /* Event.file_version */
    } else {
        size_t tl = strlen(tag);
        size_t value_len = 1 + varint_len(tl) + tl + 1 + 4;         /* Value.tag, Value.simple_value */
        size_t summary_len = 1 + varint_len(value_len) + value_len; /* Summary.value */
        pb_key(&b, 5, 2);                                           /* Event.summary */
        pb_varint(&b, summary_len);
        pb_key(&b, 1, 2); /* Summary.value (repeated, one here) */
        pb_varint(&b, value_len);
        pb_bytes(&b, 1, tag, tl); /* Summary.Value.tag */
        uint32_t v;
        memcpy(&v, &value, 4);
        pb_key(&b, 2, 5); /* Summary.Value.simple_value */
        pb_fixed(&b, v, 4);
    }
    return b.overflow ? 0 : b.len;
}

size_t tfevents_frame_record(uint8_t *out, const uint8_t *data, size_t n) {
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    uint32_t lc = tfevents_masked_crc32c(len, 8), dc = tfevents_masked_crc32c(data, n);
    memcpy(out, len, 8);
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(lc >> (8 * i));
    memcpy(out + 12, data, n);
    for (int i = 0; i < 4; i++)
        out[12 + n + i] = (uint8_t)(dc >> (8 * i));
    return n + 16;
}

/* ---------------------------------------------------------------- the writer */

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_event(struct tfevents *w, int64_t step, const char *file_version, const char *tag,
                       float value) {
    if (w->failed) return err_set("%s: an earlier write failed", w->path);
    enum { MAX_TAG = 1000 };
    if (tag && strlen(tag) > MAX_TAG)
        return err_set("%s: tag '%.40s...' too long (at most %d bytes)", w->path, tag, MAX_TAG);
    uint8_t ev[MAX_TAG + 64], rec[MAX_TAG + 80];
    size_t n = tfevents_encode_event(ev, sizeof ev, wall_now(), step, file_version, tag, value);
    CHECK(n > 0, "event buffer too small");
    size_t rn = tfevents_frame_record(rec, ev, n);
    if (fwrite(rec, 1, rn, w->f) != rn) {
        w->failed = 1;
        return err_set("%s: write failed: %s", w->path, strerror(errno));
    }
    return 0;
}

struct tfevents *tfevents_open(const char *dir) {
    if (dir_create(dir)) return NULL;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    long now = (long)time(NULL);
    FILE *f = NULL;
    char *path = NULL;
    for (int i = 0; i < 1000 && !f; i++) {
        free(path);
        path = i ? xasprintf("%s/events.out.tfevents.%ld.%s.%d", dir, now, host, i)
                 : xasprintf("%s/events.out.tfevents.%ld.%s", dir, now, host);
        f = fopen(path, "wbx"); /* x: fail if it exists (a second writer in the same second) */
        if (!f && errno != EEXIST) {
            err_set("%s: cannot create: %s", path, strerror(errno));
            free(path);
            return NULL;
        }
    }
    if (!f) {
        err_set("%s: cannot create a new event file", dir);
        free(path);
        return NULL;
    }
    struct tfevents *w = xcalloc(1, sizeof *w);
    w->f = f;
    w->path = path;
    if (write_event(w, 0, "brain.Event:2", NULL, 0) || tfevents_flush(w)) {
        fclose(w->f);
        free(w->path);
        free(w);
        return NULL;
    }
    return w;
}

int tfevents_add_scalar(struct tfevents *w, const char *tag, int64_t step, float value) {
    return write_event(w, step, NULL, tag, value);
}

int tfevents_flush(struct tfevents *w) {
    if (w->failed) return err_set("%s: an earlier write failed", w->path);
    if (fflush(w->f) != 0) {
        w->failed = 1;
        return err_set("%s: write failed: %s", w->path, strerror(errno));
    }
    return 0;
}

int tfevents_close(struct tfevents *w) {
    if (!w) return 0;
    int rc = tfevents_flush(w);
    if (rc == 0 && fsync(fileno(w->f)) != 0 && errno != EINVAL)
        rc = err_set("%s: fsync failed: %s", w->path, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0) rc = err_set("%s: close failed: %s", w->path, strerror(errno));
    free(w->path);
    free(w);
    return rc;
}

const char *tfevents_path(const struct tfevents *w) { return w->path; }
