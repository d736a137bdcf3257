/* tfevents: TensorBoard event files written natively (no TensorFlow, no protobuf library).
 * A file is a sequence of TFRecords: uint64 length (LE), masked CRC32C of the length, the
 * data, masked CRC32C of the data. Each record is an `Event` protobuf (tensorflow/core/util/
 * event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3 (the first event,
 * "brain.Event:2"), summary = 5 holding Summary.Value {tag = 1, simple_value = 2 (float)}. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct tfevents; /* opaque writer */

/* Creates dir if needed and a new file events.out.tfevents.<unix time>.<hostname> in it
 * (".<n>" appended if that name exists), and writes the file_version event.
 * Returns NULL + err on failure. */
struct tfevents *tfevents_open(const char *dir);
/* Appends one scalar at wall-clock now. Returns 0, or -1 + err (naming the file) on a write
 * failure such as a full disk. */
int tfevents_add_scalar(struct tfevents *w, const char *tag, int64_t step, float value);
/* Pushes buffered events to the OS so TensorBoard sees them. */
int tfevents_flush(struct tfevents *w);
/* Flushes, fsyncs and closes; frees w (NULL is fine). Returns -1 + err if the final write failed. */
int tfevents_close(struct tfevents *w);
const char *tfevents_path(const struct tfevents *w);

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses. */
uint32_t tfevents_crc32c(const void *data, size_t n);
/* ((crc >> 15) | (crc << 17)) + 0xa282ead8 */
uint32_t tfevents_masked_crc32c(const void *data, size_t n);
/* Encodes an Event into buf: always wall_time and step; a file_version string if
 * file_version != NULL, else a scalar summary (tag, value). Returns the length, or 0 if it
 * does not fit in cap. */
size_t tfevents_encode_event(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                             const char *file_version, const char *tag, float value);
/* Frames data as one TFRecord into out (needs n + 16 bytes). Returns n + 16. */
size_t tfevents_frame_record(uint8_t *out, const uint8_t *data, size_t n);
