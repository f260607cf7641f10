/*
 * event_scan.c: decide at C speed whether a serialized batch of usage events is clean.
 *
 * Ingest's hot path. A batch is "clean" when every event passes every rule of services/ingest/domain/event.py,
 * has its own event_id and timestamp, and no event_id repeats: then ingest forwards the client's bytes to the
 * event log as they are, without building a Python object per event. Anything else (a rule broken, an id or
 * timestamp to fill in, a duplicate, malformed or unusual encoding) is "not clean", and the Python path, which
 * stays the one authority on reasons, screens the batch event by event. So this scanner may be stricter than
 * the rules, never looser; tests/unit/services/ingest/adapters/test_native_scan.py checks that property.
 *
 * Wire format (protos/billing/ingest/v1/ingest.proto): the request holds `uint64 sequence = 1` (streams only)
 * and `repeated Event events = <events_field>`; Event is {1 event_id, 2 metric, 3 value, 4 timestamp
 * {1 seconds, 2 nanos}, 5 dimensions (map entries {1 key, 2 value}), 6 unit}.
 *
 * Built by `make protos` into gen/native/libeventscan.so and called through ctypes; no Python headers needed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protowire.h"

typedef struct {
    int64_t min_seconds; /* an event's timestamp must be >= this ... */
    int64_t max_seconds; /* ... and <= this (both inclusive) */
    int32_t max_events;
    int32_t max_dimensions;
    int32_t max_key_chars;
    int32_t max_value_chars;
    int32_t max_unit_chars;
    int32_t max_event_id_chars;
} scan_limits;

/* What a clean batch adds up to for one metric code: what quota enforcement asks about, without a Python
 * object per event (services/ingest/service/quotas.py). */
typedef struct {
    size_t name_offset; /* the metric code: bytes [name_offset, name_offset + name_len) of the request */
    size_t name_len;
    int32_t events;
    int32_t exact;       /* 1 while every value is an integer of at most 18 digits and `sum` did not overflow */
    int64_t min_seconds; /* the earliest and latest event timestamps */
    int64_t max_seconds;
    int64_t sum; /* of the values, when exact */
    int64_t max; /* the largest value, when exact */
} metric_summary;

typedef struct {
    int32_t events;    /* events in the batch */
    uint64_t sequence; /* field 1 of the request, 0 when absent */
    /* For a clean batch: its event ids joined by NUL, written to the caller's buffer (at least `size` bytes),
     * which is what the batch's Nats-Msg-Id digests (as the Python path does), and that text's length. */
    uint8_t *ids;
    size_t ids_len;
    /* For a clean batch: one summary per distinct metric code, in order of first appearance, written to the
     * caller's array of `max_metrics`; metric_count is -1 when the batch has more distinct codes than that. */
    metric_summary *metrics;
    int32_t max_metrics;
    int32_t metric_count;
} scan_result;

enum { CLEAN = 0, NOT_CLEAN = 1 };

/* event_id: 1..max ASCII characters from '!' to '~' (the rule also admits other visible Unicode; those batches
 * take the Python path). */
static int clean_event_id(const uint8_t *s, size_t n, int32_t max_chars) {
    if (n == 0 || n > (size_t)max_chars) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e) return 0;
    }
    return 1;
}

/* metric: [a-z][a-z0-9_.-]{0,63} */
static int clean_metric(const uint8_t *s, size_t n) {
    if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z') return 0;
    for (size_t i = 1; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return 0;
    }
    return 1;
}

/* value: [+-]?[0-9]{1,29}(\.[0-9]{0,18})? which is always finite, below 1e30 and at most 18 places. */
static int clean_value(const uint8_t *s, size_t n) {
    size_t i = 0, digits = 0, places = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (digits == 0 || digits > 29) return 0;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            places++;
        }
        if (places > 18) return 0;
    }
    return i == n;
}

static int clean_timestamp(const uint8_t *p, const uint8_t *end, const scan_limits *limits, int64_t *out) {
    int64_t seconds = 0, nanos = 0;
    int seen_seconds = 0, seen_nanos = 0;
    while (p < end) {
        uint64_t tag, value;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if ((field == 1 || field == 2) && wire == WIRE_VARINT) {
            if (!read_varint(&p, end, &value)) return 0;
            if (field == 1) {
                if (seen_seconds++) return 0;
                seconds = (int64_t)value;
            } else {
                if (seen_nanos++) return 0;
                nanos = (int64_t)(int32_t)(uint32_t)value;
            }
        } else {
            return 0;
        }
    }
    *out = seconds;
    return seconds >= limits->min_seconds && seconds <= limits->max_seconds && nanos >= 0 && nanos < 1000000000;
}

static int clean_dimension(const uint8_t *p, const uint8_t *end, const scan_limits *limits) {
    int64_t key_chars = 0;
    int seen_key = 0, seen_value = 0;
    while (p < end) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if ((field != 1 && field != 2) || wire != WIRE_LEN || !read_len(&p, end, &len)) return 0;
        int64_t chars = utf8_chars(p, len);
        if (chars < 0) return 0;
        if (field == 1) {
            if (seen_key++) return 0;
            key_chars = chars;
        } else {
            if (seen_value++) return 0;
            if (chars > limits->max_value_chars) return 0;
        }
        p += len;
    }
    return key_chars >= 1 && key_chars <= limits->max_key_chars;
}

typedef struct {
    const uint8_t *id;
    size_t id_len;
    const uint8_t *metric;
    size_t metric_len;
    const uint8_t *value;
    size_t value_len;
    int64_t seconds;
} event_view;

static int clean_event(const uint8_t *p, const uint8_t *end, const scan_limits *limits, event_view *view) {
    int seen[7] = {0};
    int32_t dimensions = 0;
    while (p < end) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) return 0;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (field < 1 || field > 6) { /* a newer client's field: kept, not judged */
            if (!skip_field(&p, end, wire)) return 0;
            continue;
        }
        if (wire != WIRE_LEN || !read_len(&p, end, &len)) return 0;
        if (field != 5 && seen[field]++) return 0; /* a repeated singular field: let Python judge */
        const uint8_t *s = p;
        p += len;
        switch (field) {
        case 1:
            if (!clean_event_id(s, len, limits->max_event_id_chars)) return 0;
            view->id = s;
            view->id_len = len;
            break;
        case 2:
            if (!clean_metric(s, len)) return 0;
            view->metric = s;
            view->metric_len = len;
            break;
        case 3:
            if (!clean_value(s, len)) return 0;
            view->value = s;
            view->value_len = len;
            break;
        case 4:
            if (!clean_timestamp(s, s + len, limits, &view->seconds)) return 0;
            break;
        case 5:
            if (++dimensions > limits->max_dimensions || !clean_dimension(s, s + len, limits)) return 0;
            break;
        case 6: {
            int64_t chars = utf8_chars(s, len);
            if (chars < 0 || chars > limits->max_unit_chars) return 0;
            break;
        }
        }
    }
    /* An id, a metric, a value and a timestamp are all needed; a missing one is filled in or refused. */
    return seen[1] && seen[2] && seen[3] && seen[4];
}

/* A hash for the duplicate check, eight bytes at a time (collisions only cost a memcmp, never a wrong answer). */
static uint64_t id_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, s, 8);
        h = (h ^ word) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, s, n);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* 1 if some event_id appears twice. Open addressing over a table at least twice the number of events. */
static int has_duplicate_ids(const event_view *views, int32_t count, int *failed) {
    size_t size = 16;
    while (size < (size_t)count * 2) size <<= 1;
    int32_t *slots = malloc(size * sizeof(int32_t));
    if (slots == NULL) {
        *failed = 1;
        return 0;
    }
    memset(slots, 0xff, size * sizeof(int32_t)); /* -1: empty */
    int duplicate = 0;
    for (int32_t i = 0; i < count && !duplicate; i++) {
        size_t slot = (size_t)id_hash(views[i].id, views[i].id_len) & (size - 1);
        while (slots[slot] >= 0) {
            const event_view *other = &views[slots[slot]];
            if (other->id_len == views[i].id_len && memcmp(other->id, views[i].id, views[i].id_len) == 0) {
                duplicate = 1;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
        slots[slot] = i;
    }
    free(slots);
    return duplicate;
}

/* A clean value as an integer: 0 when it has a fractional part or more than 18 digits (the caller sums in
 * Python then). */
static int integer_value(const uint8_t *s, size_t n, int64_t *out) {
    size_t i = 0;
    int negative = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
    if (n - i > 18) return 0;
    int64_t value = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        value = value * 10 + (s[i] - '0');
    }
    *out = negative ? -value : value;
    return 1;
}

/* One summary per distinct metric of a clean batch; 0 when there are more distinct codes than `max_metrics`. */
static int summarise_metrics(const uint8_t *data, const event_view *views, int32_t count, scan_result *result) {
    int32_t used = 0;
    for (int32_t i = 0; i < count; i++) {
        const event_view *view = &views[i];
        metric_summary *summary = NULL;
        for (int32_t m = 0; m < used; m++) {
            metric_summary *candidate = &result->metrics[m];
            if (candidate->name_len == view->metric_len &&
                memcmp(data + candidate->name_offset, view->metric, view->metric_len) == 0) {
                summary = candidate;
                break;
            }
        }
        if (summary == NULL) {
            if (used >= result->max_metrics) return 0;
            summary = &result->metrics[used++];
            summary->name_offset = (size_t)(view->metric - data);
            summary->name_len = view->metric_len;
            summary->events = 0;
            summary->exact = 1;
            summary->min_seconds = summary->max_seconds = view->seconds;
            summary->sum = 0;
            summary->max = INT64_MIN;
        }
        summary->events++;
        if (view->seconds < summary->min_seconds) summary->min_seconds = view->seconds;
        if (view->seconds > summary->max_seconds) summary->max_seconds = view->seconds;
        int64_t value;
        if (summary->exact) {
            if (!integer_value(view->value, view->value_len, &value) ||
                __builtin_add_overflow(summary->sum, value, &summary->sum)) {
                summary->exact = 0;
            } else if (value > summary->max) {
                summary->max = value;
            }
        }
    }
    result->metric_count = used;
    return 1;
}

/* Scans a serialized request whose events are field `events_field`. Returns CLEAN or NOT_CLEAN; fills *result
 * either way as far as it got. */
int scan_events(const uint8_t *data, size_t size, int events_field, const scan_limits *limits, scan_result *result) {
    const uint8_t *p = data, *end = data + size;
    result->events = 0;
    result->sequence = 0;
    result->metric_count = 0;
    /* A clean event carries an id, a metric, a value and a timestamp: at least 15 bytes on the wire with its
     * own tag and length. More events than that bound cannot all be clean. */
    size_t capacity = size / 15 + 2;
    if (capacity > (size_t)limits->max_events + 1) capacity = (size_t)limits->max_events + 1;
    event_view *views = malloc(capacity * sizeof(event_view));
    if (views == NULL) return NOT_CLEAN;
    int verdict = CLEAN;
    int seen_sequence = 0;
    while (p < end && verdict == CLEAN) {
        uint64_t tag;
        size_t len;
        if (!read_varint(&p, end, &tag)) {
            verdict = NOT_CLEAN;
            break;
        }
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (field == events_field && wire == WIRE_LEN) {
            if (!read_len(&p, end, &len) || (size_t)result->events >= capacity - 1 ||
                result->events >= limits->max_events) {
                verdict = NOT_CLEAN;
                break;
            }
            event_view *view = &views[result->events];
            if (!clean_event(p, p + len, limits, view)) verdict = NOT_CLEAN;
            result->events++;
            p += len;
        } else if (field == 1 && wire == WIRE_VARINT && !seen_sequence++) {
            if (!read_varint(&p, end, &result->sequence)) verdict = NOT_CLEAN;
        } else {
            verdict = NOT_CLEAN; /* anything else at the top level: unusual, so the Python path decides */
        }
    }
    if (verdict == CLEAN) {
        int failed = 0;
        if (has_duplicate_ids(views, result->events, &failed) || failed) verdict = NOT_CLEAN;
    }
    if (verdict == CLEAN && result->metrics != NULL && !summarise_metrics(data, views, result->events, result)) {
        result->metric_count = -1;
    }
    result->ids_len = 0;
    for (int32_t i = 0; verdict == CLEAN && i < result->events; i++) {
        if (i > 0) result->ids[result->ids_len++] = 0; /* ids are at least 2 wire bytes apart: this fits */
        memcpy(result->ids + result->ids_len, views[i].id, views[i].id_len);
        result->ids_len += views[i].id_len;
    }
    free(views);
    return verdict;
}
