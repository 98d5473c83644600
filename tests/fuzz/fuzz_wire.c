/* fuzz_wire.c: libFuzzer target for the parent<->worker wire decoder
 * (core/plugin/wire.c). Build e.g.:
 *   clang -fsanitize=fuzzer,address -Icore tests/fuzz/fuzz_wire.c core/plugin/wire.c \
 *         core/util/alloc.c core/util/error.c -o fuzz_wire
 * Properties checked (abort() on violation):
 *   - decoding never crashes, reads out of bounds or leaks;
 *   - every decoded message re-encodes to exactly the bytes it came from;
 *   - feeding the input whole or in small chunks gives the same messages and
 *     the same final result.
 * tests/unit/test_wire.c includes this file and drives it with a
 * deterministic mini-fuzz loop, so it is built and run without libFuzzer. */
#include "util/alloc.h"
#include "util/error.h"
#include "plugin/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds data in chunks of 1..chunk_max bytes (whole if chunk_max is 0),
 * draining after each feed. Checks re-encoding; returns the number of
 * messages and stores the final cr_wire_next result in *last. */
static size_t fuzz_wire_decode(const uint8_t *data, size_t size,
                               size_t chunk_max, int *last) {
  cr_wire_decoder d;
  cr_wire_buf enc;
  struct cr_wire_msg m;
  size_t off = 0, fed = 0, count = 0, step = 0;
  int rc = 0;
  cr_wire_decoder_init(&d);
  cr_wire_buf_init(&enc);
  do {
    size_t n = size - fed;
    if (chunk_max > 0) {
      size_t c = 1 + (step++ * 2654435761u + size) % chunk_max;
      if (c < n)
        n = c;
    }
    if (cr_wire_feed(&d, data + fed, n) != 0)
      abort();
    fed += n;
    while ((rc = cr_wire_next(&d, &m)) == 1) {
      cr_wire_buf_reset(&enc);
      if (cr_wire_encode(&enc, &m) != 0)
        abort();
      if (enc.len > size - off || memcmp(enc.data, data + off, enc.len) != 0)
        abort();
      off += enc.len;
      count++;
    }
    if (rc < 0)
      break;
  } while (fed < size);
  if (rc == 0 && cr_wire_decoder_pending(&d) != size - off)
    abort();
  *last = rc;
  cr_wire_buf_free(&enc);
  cr_wire_decoder_free(&d);
  return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int last_whole, last_split;
  size_t whole = fuzz_wire_decode(data, size, 0, &last_whole);
  size_t chunk = 1 + (size ? data[0] % 7 : 0);
  size_t split = fuzz_wire_decode(data, size, chunk, &last_split);
  if (whole != split || last_whole != last_split)
    abort();
  if (last_whole != 0 && last_whole != CR_EPARSE && last_whole != CR_ERANGE)
    abort();
  return 0;
}
