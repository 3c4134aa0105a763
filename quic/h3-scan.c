/* Counts the field lines of a request's header section straight from the
 * request stream's bytes, before nghttp3 reads them.
 *
 * Why: nghttp3 (1.8 and later) silently drops some malformed fields
 * instead of rejecting the message: an empty name, a name with characters
 * outside the token set other than upper case, and a value with NUL, CR,
 * LF, other control characters or surrounding white space. RFC 9114 (4.1.2,
 * 4.2, 10.3) makes such a request malformed, and a field that vanishes on
 * the way (for example a CR LF-split value) must not reach the
 * application as a request that looks clean. nghttp3 gives no callback for
 * what it drops, but every field it keeps reaches recv_header exactly
 * once; so uvq counts the field lines of the section itself and compares
 * the two when the section ends (h3.c). Counting needs only the framing
 * of RFC 9000, 16 varints and of RFC 9204, 4.5 field lines: no table, no
 * Huffman decoding, no copy. The scan stops after the first HEADERS frame,
 * so a request body costs nothing. */
#include "h3-internal.h"

enum {
  SCAN_FRAME_TYPE = 0,
  SCAN_FRAME_LENGTH,
  SCAN_FRAME_SKIP,   /* the payload of a frame before HEADERS */
  SCAN_HEADERS,      /* the payload of the first HEADERS frame */
  SCAN_DONE
};

enum {
  FIELD_RIC = 0,     /* Required Insert Count (RFC 9204, 4.5.1.1) */
  FIELD_BASE,        /* Sign and Delta Base (4.5.1.2) */
  FIELD_LINE,        /* the first byte of a field line */
  FIELD_INT,         /* continuation bytes of a prefixed integer */
  FIELD_STRING,      /* the first byte of a string literal (a value) */
  FIELD_SKIP         /* the bytes of a string literal */
};

/* HTTP/3 frame types (RFC 9114, 7.2). */
#define FRAME_DATA 0x00
#define FRAME_HEADERS 0x01

/* Starts a prefixed integer (RFC 9204, 4.1.1) whose first byte is b, with
 * a prefix of bits bits; the field state after it is next. A string
 * length (is_len) is followed by that many bytes to skip first. */
static void start_int(struct uvq__h3_scan* s, uint8_t b, unsigned int bits,
                      uint8_t next, int is_len) {
  uint64_t max = (1u << bits) - 1;
  uint64_t v = b & max;

  s->after = next;
  s->int_is_len = (uint8_t) is_len;
  if (v == max) {
    s->int_value = max;
    s->int_shift = 0;
    s->field_state = FIELD_INT;
    return;
  }
  s->int_value = v;
  s->field_state = is_len && v > 0 ? FIELD_SKIP : next;
  s->skip = v;
}

static void end_int(struct uvq__h3_scan* s) {
  s->skip = s->int_value;
  s->field_state =
      s->int_is_len && s->int_value > 0 ? FIELD_SKIP : s->after;
}

/* Scans n bytes of the HEADERS payload; returns 0, or -1 when the bytes
 * cannot be a field section (nghttp3 will reject it on its own). */
static int scan_fields(struct uvq__h3_scan* s, const uint8_t* p, size_t n) {
  const uint8_t* end = p + n;
  uint64_t k;
  uint8_t b;

  while (p < end) {
    if (s->field_state == FIELD_SKIP) {
      k = (uint64_t) (end - p);
      if (k > s->skip)
        k = s->skip;
      p += k;
      s->skip -= k;
      if (s->skip == 0)
        s->field_state = s->after;
      continue;
    }
    b = *p++;
    switch (s->field_state) {
      case FIELD_RIC:
        start_int(s, b, 8, FIELD_BASE, 0);
        break;
      case FIELD_BASE:
        start_int(s, b, 7, FIELD_LINE, 0);
        break;
      case FIELD_LINE:
        s->lines++;
        if (b & 0x80) /* indexed (4.5.2) */
          start_int(s, b, 6, FIELD_LINE, 0);
        else if (b & 0x40) /* literal, name reference (4.5.4) */
          start_int(s, b, 4, FIELD_STRING, 0);
        else if (b & 0x20) /* literal name (4.5.6); its value follows */
          start_int(s, b, 3, FIELD_STRING, 1);
        else if (b & 0x10) /* indexed, post-base index (4.5.3) */
          start_int(s, b, 4, FIELD_LINE, 0);
        else /* literal, post-base name reference (4.5.5) */
          start_int(s, b, 3, FIELD_STRING, 0);
        break;
      case FIELD_STRING:
        start_int(s, b, 7, FIELD_LINE, 1);
        break;
      case FIELD_INT:
        /* Larger than any length the frame could hold: not QPACK. */
        if (s->int_shift > 56)
          return -1;
        s->int_value += (uint64_t) (b & 0x7f) << s->int_shift;
        s->int_shift += 7;
        if (!(b & 0x80))
          end_int(s);
        break;
    }
  }
  return 0;
}

/* Reads a QUIC varint (RFC 9000, 16) across calls; 1 when complete. */
static int read_varint(struct uvq__h3_scan* s, const uint8_t** pp,
                       const uint8_t* end) {
  const uint8_t* p = *pp;

  if (s->varint_left == 0) {
    s->varint_left = (uint8_t) (1u << (*p >> 6));
    s->varint = *p++ & 0x3f;
    s->varint_left--;
  }
  while (s->varint_left > 0 && p < end) {
    s->varint = (s->varint << 8) | *p++;
    s->varint_left--;
  }
  *pp = p;
  return s->varint_left == 0;
}

void uvq__h3_scan_feed(struct uvq__h3_scan* s, const uint8_t* data,
                       size_t len) {
  const uint8_t* p;
  const uint8_t* end;
  uint64_t k;

  /* A stream's FIN alone comes with no data (NULL, 0): nothing to scan,
   * and NULL + 0 is not a pointer C allows to be formed. */
  if (len == 0)
    return;
  p = data;
  end = data + len;

  while (p < end && s->frame_state != SCAN_DONE) {
    switch (s->frame_state) {
      case SCAN_FRAME_TYPE:
        if (!read_varint(s, &p, end))
          return;
        s->frame_type = s->varint;
        s->frame_state = SCAN_FRAME_LENGTH;
        break;
      case SCAN_FRAME_LENGTH:
        if (!read_varint(s, &p, end))
          return;
        s->frame_left = s->varint;
        if (s->frame_type == FRAME_HEADERS) {
          s->frame_state = SCAN_HEADERS;
          s->field_state = FIELD_RIC;
        } else if (s->frame_type == FRAME_DATA) {
          /* DATA before HEADERS: nghttp3 ends the connection. */
          s->frame_state = SCAN_DONE;
          return;
        } else {
          /* Unknown and reserved types are skipped (RFC 9114, 9); the
           * others nghttp3 refuses. */
          s->frame_state = SCAN_FRAME_SKIP;
        }
        break;
      case SCAN_FRAME_SKIP:
        k = (uint64_t) (end - p);
        if (k > s->frame_left)
          k = s->frame_left;
        p += k;
        s->frame_left -= k;
        break;
      case SCAN_HEADERS:
        k = (uint64_t) (end - p);
        if (k > s->frame_left)
          k = s->frame_left;
        if (scan_fields(s, p, (size_t) k) != 0) {
          s->frame_state = SCAN_DONE;
          return;
        }
        p += k;
        s->frame_left -= k;
        break;
    }
    if (s->frame_left == 0) {
      if (s->frame_state == SCAN_FRAME_SKIP) {
        s->frame_state = SCAN_FRAME_TYPE;
      } else if (s->frame_state == SCAN_HEADERS) {
        /* The section ends between two field lines, or it is not one. */
        s->complete = s->field_state == FIELD_LINE;
        s->frame_state = SCAN_DONE;
      }
    }
  }
}

int uvq__h3_scan_done(const struct uvq__h3_scan* s) {
  return s->frame_state == SCAN_DONE;
}
