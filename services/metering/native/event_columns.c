/*
 * event_columns.c: turn one serialized EventBatchAccepted into the columns metering inserts, at C speed.
 *
 * The consumer's hot loop. Building the columns from protobuf objects costs Python ~5 us an event (mostly
 * turning dimension maps into JSON), more than the whole bare INSERT. Here one pass over the bytes writes:
 *   - event ids, metric codes and values, each joined by 0x1F (the unit separator; ingest refuses control
 *     characters in them, and a batch holding one is left to the Python decoder);
 *   - each event's dimensions as a JSON object ("null" when it has none), joined by 0x1E (JSON text never
 *     holds a raw control character: they are escaped);
 *   - timestamps as microseconds since the epoch (seconds * 1e6 + floor(nanos / 1000)).
 * Python then splits the joined text (one C call per column) and hands the lists to asyncpg.
 *
 * Semantics follow protobuf: fields in any order, unknown fields skipped, the last of a repeated singular
 * field wins, a repeated timestamp merges field by field, a repeated map key keeps the last value (as jsonb
 * does with a repeated key). Returns a negative number for anything it does not handle (malformed bytes,
 * invalid UTF-8, NUL or a separator where it cannot be) and the Python decoder (upb) takes that message,
 * which keeps PoisonBatch and dead-letter behaviour in one place.
 *
 * Built by `make protos` into gen/native/libeventcolumns.so and called through ctypes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protowire.h"

#define UNIT_SEPARATOR 0x1f
#define RECORD_SEPARATOR 0x1e

typedef struct {
    uint8_t *data;
    size_t len, cap;
} out_buf;

typedef struct {
    /* Outputs, allocated by the caller: text columns at least as long as the payload, JSON six times that
     * (escapes), timestamps one slot per possible event (payload / 2 + 1). */
    out_buf ids, metrics, values, dimensions;
    int64_t *timestamps_us;
    size_t timestamps_cap;
    /* Offsets of the batch's organisation_id and project_id in the payload (-1 when absent). */
    int64_t organisation_at, organisation_len, project_at, project_len;
} columns_out;

static int put(out_buf *out, const uint8_t *s, size_t n) {
    if (out->len + n > out->cap) return 0;
    memcpy(out->data + out->len, s, n);
    out->len += n;
    return 1;
}

static int put_byte(out_buf *out, uint8_t c) {
    if (out->len + 1 > out->cap) return 0;
    out->data[out->len++] = c;
    return 1;
}

/* Plain text for a joined column: valid UTF-8, no control characters (so no separator). */
static int put_plain(out_buf *out, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20) return 0;
    }
    if (utf8_chars(s, n) < 0) return 0;
    return put(out, s, n);
}

static const char HEX[] = "0123456789abcdef";

/* A JSON string literal; the caller has checked UTF-8. */
static int put_json_string(out_buf *out, const uint8_t *s, size_t n) {
    if (!put_byte(out, '"')) return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            if (!put_byte(out, '\\') || !put_byte(out, c)) return 0;
        } else if (c < 0x20) {
            uint8_t escape[6] = {'\\', 'u', '0', '0', (uint8_t)HEX[c >> 4], (uint8_t)HEX[c & 15]};
            if (!put(out, escape, 6)) return 0;
        } else if (!put_byte(out, c)) {
            return 0;
        }
    }
    return put_byte(out, '"');
}

/* One map entry {1: key, 2: value} as "key":"value". */
static int put_dimension(out_buf *out, const uint8_t *p, const uint8_t *end) {
    const uint8_t *key = (const uint8_t *)"", *value = (const uint8_t *)"";
    size_t key_len = 0, value_len = 0;
    while (p < end) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if ((field == 1 || field == 2) && wire == WIRE_LEN) {
            if (!read_len(&p, end, &len) || utf8_chars(p, len) < 0) return 0;
            if (field == 1) {
                key = p;
                key_len = len;
            } else {
                value = p;
                value_len = len;
            }
            p += len;
        } else if (!skip_field(&p, end, wire)) {
            return 0;
        }
    }
    return put_json_string(out, key, key_len) && put_byte(out, ':') && put_json_string(out, value, value_len);
}

static int read_timestamp(const uint8_t *p, const uint8_t *end, int64_t *seconds, int64_t *nanos) {
    while (p < end) {
        uint64_t tag, value;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if ((field == 1 || field == 2) && wire == WIRE_VARINT) {
            if (!read_varint(&p, end, &value)) return 0;
            if (field == 1) {
                *seconds = (int64_t)value;
            } else {
                *nanos = (int64_t)(int32_t)(uint32_t)value;
            }
        } else if (!skip_field(&p, end, wire)) {
            return 0;
        }
    }
    return 1;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int decode_event(const uint8_t *p, const uint8_t *end, columns_out *out, size_t index) {
    const uint8_t *id = (const uint8_t *)"", *metric = id, *value = id;
    size_t id_len = 0, metric_len = 0, value_len = 0;
    int64_t seconds = 0, nanos = 0;
    int dimensions = 0;
    while (p < end) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (field < 1 || field > 6 || wire != WIRE_LEN) {
            if (!skip_field(&p, end, wire)) return 0;
            continue;
        }
        if (!read_len(&p, end, &len)) return 0;
        const uint8_t *s = p;
        p += len;
        switch (field) {
        case 1:
            id = s;
            id_len = len;
            break;
        case 2:
            metric = s;
            metric_len = len;
            break;
        case 3:
            value = s;
            value_len = len;
            break;
        case 4:
            if (!read_timestamp(s, s + len, &seconds, &nanos)) return 0;
            break;
        case 5:
            if (!put_byte(&out->dimensions, dimensions++ ? ',' : '{') || !put_dimension(&out->dimensions, s, s + len))
                return 0;
            break;
        default: /* 6, unit: metering does not store it */
            if (utf8_chars(s, len) < 0) return 0;
            break;
        }
    }
    if (dimensions ? !put_byte(&out->dimensions, '}') : !put(&out->dimensions, (const uint8_t *)"null", 4)) return 0;
    if (index >= out->timestamps_cap) return 0;
    out->timestamps_us[index] = seconds * 1000000 + floor_div(nanos, 1000);
    return put_plain(&out->ids, id, id_len) && put_plain(&out->metrics, metric, metric_len) &&
           put_plain(&out->values, value, value_len);
}

/* Decodes an EventBatchAccepted. Returns the number of events, or -1 when the Python decoder must do it. */
int64_t event_columns(const uint8_t *data, size_t size, columns_out *out) {
    const uint8_t *p = data, *end = data + size;
    int64_t count = 0;
    out->ids.len = out->metrics.len = out->values.len = out->dimensions.len = 0;
    out->organisation_at = out->project_at = -1;
    out->organisation_len = out->project_len = 0;
    while (p < end) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) return -1;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (wire != WIRE_LEN || field < 2 || field > 5) {
            if (!skip_field(&p, end, wire)) return -1;
            continue;
        }
        if (!read_len(&p, end, &len)) return -1;
        if (field == 2) {
            if (count > 0) {
                if (!put_byte(&out->ids, UNIT_SEPARATOR) || !put_byte(&out->metrics, UNIT_SEPARATOR) ||
                    !put_byte(&out->values, UNIT_SEPARATOR) || !put_byte(&out->dimensions, RECORD_SEPARATOR))
                    return -1;
            }
            if (!decode_event(p, p + len, out, (size_t)count)) return -1;
            count++;
        } else if (utf8_chars(p, len) < 0) {
            return -1;
        } else if (field == 3) { /* batch_id: only checked, as protobuf would */
        } else if (field == 4) {
            out->organisation_at = p - data;
            out->organisation_len = (int64_t)len;
        } else {
            out->project_at = p - data;
            out->project_len = (int64_t)len;
        }
        p += len;
    }
    return count;
}
