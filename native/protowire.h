/*
 * protowire.h: the few pieces of the protobuf wire format our native code reads (varints, lengths, skipping
 * fields), and strict UTF-8 checking. Shared by ingest's event scanner and metering's event columns; static
 * functions, so each library compiles its own copy.
 */
#ifndef BILLING_PROTOWIRE_H
#define BILLING_PROTOWIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VARINT 0
#define WIRE_I64 1
#define WIRE_LEN 2
#define WIRE_I32 5

static inline int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t byte = *(*p)++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 1;
        }
    }
    return 0;
}

/* Reads a LEN field's length and checks it fits; *p then points at its first byte. */
static inline int read_len(const uint8_t **p, const uint8_t *end, size_t *len) {
    uint64_t n;
    if (!read_varint(p, end, &n) || n > (uint64_t)(end - *p)) return 0;
    *len = (size_t)n;
    return 1;
}

static inline int skip_field(const uint8_t **p, const uint8_t *end, int wire) {
    uint64_t ignored;
    size_t len;
    switch (wire) {
    case WIRE_VARINT:
        return read_varint(p, end, &ignored);
    case WIRE_I64:
        if (end - *p < 8) return 0;
        *p += 8;
        return 1;
    case WIRE_LEN:
        if (!read_len(p, end, &len)) return 0;
        *p += len;
        return 1;
    case WIRE_I32:
        if (end - *p < 4) return 0;
        *p += 4;
        return 1;
    default: /* groups: legal protobuf, never ours; let the Python path judge */
        return 0;
    }
}

/* Code points in a strictly valid UTF-8 string without NUL (what Python's len() counts), or -1 otherwise
 * (protobuf refuses invalid UTF-8; the rules refuse NUL in dimensions). */
static inline int64_t utf8_chars(const uint8_t *s, size_t n) {
    int64_t chars = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            if (c == 0) return -1; /* valid UTF-8, but PostgreSQL cannot store NUL: the Python path refuses it */
            i++;
            chars++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f; /* no UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            return -1;
        }
        if (i + extra >= n) return -1;
        if (s[i + 1] < lo || s[i + 1] > hi) return -1;
        for (size_t k = 2; k <= extra; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf) return -1;
        }
        i += extra + 1;
        chars++;
    }
    return chars;
}

#endif
