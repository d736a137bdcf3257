/* Tests for src/io/tfevents: CRC32C vectors, the exact bytes of one event record (computed
 * independently with a bitwise CRC32C and Python's struct), and a written file decoded back
 * by a small TFRecord + protobuf reader here. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "io/tfevents.h"
#include "test.h"

static void test_crc32c(void) {
    EXPECT(tfevents_crc32c("123456789", 9) == 0xE3069283u, "check value %08x",
           tfevents_crc32c("123456789", 9));
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    EXPECT(tfevents_crc32c(zeros, 32) == 0x8A9136AAu, "RFC 3720 zeros");
    EXPECT(tfevents_crc32c(ones, 32) == 0x62A8AB43u, "RFC 3720 ones");
    EXPECT(tfevents_crc32c("", 0) == 0, "empty");
    EXPECT(tfevents_masked_crc32c("", 0) == 0xa282ead8u, "mask of 0");
}

static void test_exact_bytes(void) {
    static const uint8_t want[] = {
        0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9b, 0xd8, 0x2d, /* length 26, masked crc */
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,                   /* wall_time 1.5 */
        0x10, 0x03,                                                             /* step 3 */
        0x2a, 0x0d, 0x0a, 0x0b, 0x0a, 0x04, 0x6c, 0x6f, 0x73, 0x73,             /* summary.value.tag "loss" */
        0x15, 0x00, 0x00, 0x00, 0x40,                                           /* simple_value 2.0f */
        0x96, 0x10, 0x0c, 0x33};                                                /* masked crc of data */
    uint8_t ev[64], rec[80];
    size_t n = tfevents_encode_event(ev, sizeof ev, 1.5, 3, NULL, "loss", 2.0f);
    EXPECT(n == 26, "event length %zu", n);
    size_t rn = tfevents_frame_record(rec, ev, n);
    EXPECT(rn == sizeof want && memcmp(rec, want, sizeof want) == 0, "record bytes");
    EXPECT(tfevents_encode_event(ev, 10, 1.5, 3, NULL, "loss", 2.0f) == 0, "too small a buffer");
    /* the file_version event; step 0 is omitted (proto3 default) */
    n = tfevents_encode_event(ev, sizeof ev, 1.5, 0, "brain.Event:2", NULL, 0);
    static const uint8_t fv[] = {0x09, 0,   0,   0,   0,   0,   0,   0xf8, 0x3f, 0x1a, 0x0d, 'b',
                                 'r',  'a', 'i', 'n', '.', 'E', 'v', 'e',  'n',  't',  ':',  '2'};
    EXPECT(n == sizeof fv && memcmp(ev, fv, n) == 0, "file_version event");
    /* a negative step is a 10-byte two's-complement varint */
    n = tfevents_encode_event(ev, sizeof ev, 1.5, -1, "x", NULL, 0);
    EXPECT(n == 9 + 11 + 3 && ev[9] == 0x10 && ev[19] == 0x01, "negative step");
}

/* ---- a small reader: TFRecords with CRC checks, then the Event fields we write */

struct event {
    double wall_time;
    int64_t step;
    char file_version[32];
    char tag[64];
    float value;
    int has_value;
};

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* Decodes one message; calls itself for Event.summary and Summary.value (depth 0, 1, 2). */
static int decode(const uint8_t *p, const uint8_t *end, int depth, struct event *e) {
    while (p < end) {
        uint64_t key, v;
        if (read_varint(&p, end, &key)) return -1;
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (wire == 0) {
            if (read_varint(&p, end, &v)) return -1;
            if (depth == 0 && field == 2) e->step = (int64_t)v;
        } else if (wire == 1) {
            if (end - p < 8) return -1;
            if (depth == 0 && field == 1) memcpy(&e->wall_time, p, 8);
            p += 8;
        } else if (wire == 5) {
            if (end - p < 4) return -1;
            if (depth == 2 && field == 2) memcpy(&e->value, p, 4), e->has_value = 1;
            p += 4;
        } else if (wire == 2) {
            if (read_varint(&p, end, &v) || (uint64_t)(end - p) < v) return -1;
            if (depth == 0 && field == 3)
                snprintf(e->file_version, sizeof e->file_version, "%.*s", (int)v, p);
            else if ((depth == 0 && field == 5) || (depth == 1 && field == 1)) {
                if (decode(p, p + v, depth + 1, e)) return -1;
            } else if (depth == 2 && field == 1)
                snprintf(e->tag, sizeof e->tag, "%.*s", (int)v, p);
            p += v;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Reads up to max events; returns the count, or -1 on a framing/CRC error. */
static int read_events(const uint8_t *buf, size_t len, struct event *ev, int max) {
    size_t off = 0;
    int n = 0;
    while (off < len && n < max) {
        if (len - off < 12) return -1;
        uint64_t rl = 0;
        uint32_t lc = 0, dc = 0;
        for (int i = 0; i < 8; i++)
            rl |= (uint64_t)buf[off + i] << (8 * i);
        for (int i = 0; i < 4; i++)
            lc |= (uint32_t)buf[off + 8 + i] << (8 * i);
        if (lc != tfevents_masked_crc32c(buf + off, 8) || len - off - 12 < rl + 4) return -1;
        const uint8_t *data = buf + off + 12;
        for (int i = 0; i < 4; i++)
            dc |= (uint32_t)data[rl + i] << (8 * i);
        if (dc != tfevents_masked_crc32c(data, rl)) return -1;
        memset(&ev[n], 0, sizeof ev[n]);
        if (decode(data, data + rl, 0, &ev[n])) return -1;
        n++;
        off += 12 + rl + 4;
    }
    return n;
}

static void test_write_read(void) {
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/csft_test_tfevents_%d/tb", (int)getpid());
    struct tfevents *w = tfevents_open(dir);
    EXPECT(w, "%s", err_msg());
    if (!w) return;
    struct tfevents *w2 = tfevents_open(dir); /* same second: gets a distinct name */
    EXPECT(w2 && strcmp(tfevents_path(w), tfevents_path(w2)) != 0, "distinct files");
    EXPECT(tfevents_close(w2) == 0, "%s", err_msg());
    EXPECT(strstr(tfevents_path(w), "/events.out.tfevents."), "name %s", tfevents_path(w));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    EXPECT(strstr(tfevents_path(w), host), "hostname in %s", tfevents_path(w));
    for (int s = 1; s <= 3; s++)
        EXPECT(tfevents_add_scalar(w, "train/loss", s * 10, 3.0f / s) == 0, "%s", err_msg());
    EXPECT(tfevents_add_scalar(w, "train/lr", 30, 1e-4f) == 0, "lr");
    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    EXPECT(tfevents_add_scalar(w, big, 1, 0) != 0, "long tag");
    EXPECT_ERR("too long");
    char *path = xstrdup(tfevents_path(w));
    EXPECT(tfevents_close(w) == 0, "%s", err_msg());
    size_t len;
    uint8_t *buf = (uint8_t *)file_read_all(path, &len);
    EXPECT(buf, "%s", err_msg());
    struct event ev[8];
    int n = read_events(buf, len, ev, 8);
    EXPECT(n == 5, "events %d", n);
    if (n == 5) {
        EXPECT_STR(ev[0].file_version, "brain.Event:2");
        EXPECT(ev[0].wall_time > 1.6e9 && ev[0].step == 0 && !ev[0].has_value, "first event");
        EXPECT_STR(ev[2].tag, "train/loss");
        EXPECT(ev[2].step == 20 && ev[2].value == 1.5f && ev[2].has_value, "scalar");
        EXPECT_STR(ev[4].tag, "train/lr");
        EXPECT(ev[4].value == 1e-4f && ev[4].wall_time >= ev[0].wall_time, "lr");
    }
    /* a flipped byte is caught by the CRC */
    buf[len - 6] ^= 1;
    EXPECT(read_events(buf, len, ev, 8) == -1, "crc catches corruption");
    free(buf);
    free(path);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/csft_test_tfevents_%d", (int)getpid());
    EXPECT(system(cmd) == 0, "cleanup");
}

static void test_open_errors(void) {
    EXPECT(tfevents_open("/proc/csft_no/tb") == NULL, "unwritable");
    EXPECT_ERR("/proc/csft_no");
    EXPECT(tfevents_close(NULL) == 0, "close NULL");
}

int main(void) {
    RUN(test_crc32c);
    RUN(test_exact_bytes);
    RUN(test_write_read);
    RUN(test_open_errors);
    return TEST_SUMMARY("tfevents");
}
