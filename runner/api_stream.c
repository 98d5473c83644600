/* api_stream.c: the CLI's Server-Sent Events client (see api_client.h):
 * libcurl's write callback cuts the stream into lines and the lines into
 * events as the HTML Living Standard's "Server-sent events" section
 * describes the event-stream format (lines end with CRLF, LF or CR; a line
 * starting with ':' is a comment; "field: value" with one leading space of
 * the value dropped; data lines are joined with LF; a blank line ends the
 * event, and an event without data is not dispatched; the id persists as
 * the last event id, sent back as Last-Event-ID when reconnecting), and
 * the reconnection with a bounded backoff. */
#include "api_client.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util/jsonbuf.h"

#define LINE_MAX_BYTES (1 << 20) /* a longer line ends the stream */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 10000
#define SILENT_MAX_S 60

struct sse {
  struct cr__jsonbuf line, data, body; /* raw text; body: a refusal's JSON */
  char event[64];
  char *id; /* the caller's last_id (32 bytes) */
  int cr, overflow, stopped, got_event;
  CURL *curl;
  cr_cli_sse_fn fn;
  void *ud;
  volatile sig_atomic_t *stop;
};

/* Appends n bytes to b: 0, or -1 when b is out of memory. */
static int text_add(struct cr__jsonbuf *b, const char *p, size_t n) {
  cr__jb_raw(b, p, n);
  return b->err ? -1 : 0;
}

/* A blank line: the event collected so far goes to fn. */
static void dispatch(struct sse *s) {
  if (s->data.len > 0) {
    s->data.p[--s->data.len] = '\0'; /* the last data line's LF */
    s->got_event = 1;
    if (s->fn(s->ud, s->id, s->event[0] ? s->event : "message", s->data.p))
      s->stopped = 1;
  }
  s->data.len = 0;
  s->event[0] = '\0';
}

static int field_is(const char *f, size_t n, const char *name) {
  return strlen(name) == n && memcmp(f, name, n) == 0;
}

static void on_line(struct sse *s, const char *l, size_t n) {
  if (n == 0) {
    dispatch(s);
    return;
  }
  if (l[0] == ':')
    return;
  const char *colon = memchr(l, ':', n);
  size_t fn = colon ? (size_t)(colon - l) : n;
  const char *v = colon ? colon + 1 : l + n;
  if (v < l + n && *v == ' ')
    v++;
  size_t vn = (size_t)(l + n - v);
  if (field_is(l, fn, "data")) {
    if (s->data.len + vn > 4 * LINE_MAX_BYTES ||
        text_add(&s->data, v, vn) != 0 || text_add(&s->data, "\n", 1) != 0)
      s->overflow = 1;
  } else if (field_is(l, fn, "event")) {
    snprintf(s->event, sizeof s->event, "%.*s", (int)vn, v);
  } else if (field_is(l, fn, "id") && memchr(v, '\0', vn) == NULL && vn < 32) {
    memcpy(s->id, v, vn);
    s->id[vn] = '\0';
  } /* retry and unknown fields are ignored */
}

static size_t on_data(char *d, size_t size, size_t nmemb, void *ud) {
  struct sse *s = ud;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200)
    return text_add(&s->body, d, n) == 0 && s->body.len < LINE_MAX_BYTES ? n
                                                                         : 0;
  for (size_t i = 0; i < n && !s->stopped; i++) {
    char c = d[i];
    if (s->cr && c == '\n') {
      s->cr = 0;
      continue;
    }
    s->cr = c == '\r';
    if (c == '\r' || c == '\n') {
      on_line(s, s->line.p ? s->line.p : "", s->line.len);
      s->line.len = 0;
    } else if (s->line.len >= LINE_MAX_BYTES || text_add(&s->line, &c, 1)) {
      s->overflow = 1;
    }
    if (s->overflow)
      return 0;
  }
  return s->stopped ? 0 : n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d) {
  (void)a;
  (void)b;
  (void)c;
  (void)d;
  struct sse *s = ud;
  return *s->stop || s->stopped;
}

/* One connection, until it ends: the HTTP status (0: none) and, for a
 * 429 / 503, *retry_s. */
static long one_stream(struct sse *s, const char *url, long *retry_s) {
  char *auth = NULL, last[64];
  struct curl_slist *h = cr_cli_auth_header(NULL, &auth);
  h = curl_slist_append(h, "Accept: text/event-stream");
  if (s->id[0]) {
    snprintf(last, sizeof last, "Last-Event-ID: %s", s->id);
    h = curl_slist_append(h, last);
  }
  CURL *c = s->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)SILENT_MAX_S);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  long status = 0;
  curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t ra = 0;
  curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra);
  *retry_s = (long)ra;
  curl_slist_free_all(h);
  cr_cli_auth_free(auth);
  return status;
}

/* Sleeps ms, in steps, unless *stop is set meanwhile. */
static void nap(int ms, volatile sig_atomic_t *stop) {
  for (int t = 0; t < ms && !*stop; t += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

int cr_cli_stream(const char *cmd, const char *server, const char *path,
                  char *last_id, cr_cli_sse_fn fn, void *ud,
                  volatile sig_atomic_t *stop) {
  struct sse s = {.id = last_id, .fn = fn, .ud = ud, .stop = stop};
  char *url = cr_cli_url(server, path);
  s.curl = curl_easy_init();
  int ex = CR_EXIT_OK;
  if (url == NULL || s.curl == NULL) {
    cr_cli_errorf("%s: cannot start an HTTP client", cmd);
    ex = CR_EXIT_RUNTIME;
  }
  int delay = BACKOFF_FIRST_MS;
  while (ex == CR_EXIT_OK && !*stop && !s.stopped) {
    long retry_s = 0;
    s.got_event = s.overflow = s.cr = 0;
    s.line.len = s.data.len = s.body.len = 0;
    long status = one_stream(&s, url, &retry_s);
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
      json_t *err = s.body.p ? json_loadb(s.body.p, s.body.len, 0, NULL) : NULL;
      ex = cr_cli_api_error(cmd, status, err);
      json_decref(err);
      break;
    }
    if (s.overflow) {
      cr_cli_errorf("%s: the stream sent a line or an event over %d bytes", cmd,
                    4 * LINE_MAX_BYTES);
      ex = CR_EXIT_RUNTIME;
    }
    if (*stop || s.stopped || s.overflow)
      break;
    if (s.got_event)
      delay = BACKOFF_FIRST_MS;
    int wait = retry_s > 0 && retry_s * 1000 < BACKOFF_MAX_MS
                   ? (int)retry_s * 1000
                   : delay;
    fprintf(stderr,
            "connrun: %s: the stream from %s ended (HTTP %ld); reconnecting "
            "in %d ms\n",
            cmd, server, status, wait);
    nap(wait, stop);
    delay = delay * 2 < BACKOFF_MAX_MS ? delay * 2 : BACKOFF_MAX_MS;
  }
  curl_easy_cleanup(s.curl);
  free(url);
  cr__jb_clear(&s.line);
  cr__jb_clear(&s.data);
  cr__jb_clear(&s.body);
  return ex;
}
