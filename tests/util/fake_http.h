/* fake_http.h: a tiny loopback HTTP server for tests (libmicrohttpd).
 *
 * cr_fake_http_start() listens on 127.0.0.1 with an ephemeral port and runs
 * one internal polling thread. Every request is recorded (method, path,
 * query, headers, body) for assertions, then handed to the test's handler,
 * which fills the response (status, body, extra headers, optional delay).
 * The handler runs on the server thread; a delay blocks the server for its
 * duration (other connections wait), but cr_fake_http_stop() interrupts it.
 *
 * Memory here is plain malloc/free (not cr__malloc), so tests that inject
 * allocation failures into the core never hit the fake server.
 */
#ifndef CR_FAKE_HTTP_H
#define CR_FAKE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define CR_FAKE_HTTP_MAX_HEADERS 16

typedef struct cr_fake_http cr_fake_http;

/* One request as the server saw it. Owned by the server; valid until
 * cr_fake_http_stop. */
struct cr_fake_http_request {
  char *method;    /* "GET" */
  char *path;      /* "/v3/scopes" (without the query) */
  char *query;     /* raw query after '?', or NULL */
  size_t nheaders; /* headers in arrival order */
  char **names;    /* header names as sent */
  char **values;   /* header values */
  char *body;      /* NUL-terminated (may contain NULs) */
  size_t body_len;
};

/* What the handler answers. Zero-initialised by the server with status 200;
 * body NULL means empty. Pointers must stay valid until the handler returns
 * (the server copies them); cr_fake_http_set_body formats a body the server
 * frees itself. headers: up to CR_FAKE_HTTP_MAX_HEADERS "Name: value"
 * strings, NULL-terminated early. */
struct cr_fake_http_response {
  int status;
  const char *body;
  size_t body_len;          /* 0: strlen(body) */
  const char *content_type; /* NULL: "application/json" */
  const char *headers[CR_FAKE_HTTP_MAX_HEADERS];
  unsigned delay_ms; /* wait before answering */
  char *owned_body;  /* private: set by cr_fake_http_set_body */
};

/* Called for every request on the server thread. req is borrowed. */
typedef void (*cr_fake_http_handler)(void *ud,
                                     const struct cr_fake_http_request *req,
                                     struct cr_fake_http_response *resp);

/* A handler answering every request 204 No Content (ud unused). */
void cr_fake_http_no_content(void *ud, const struct cr_fake_http_request *req,
                             struct cr_fake_http_response *resp);

/* Starts a server. handler may be NULL (every request gets 404). ud is
 * borrowed. Returns 0 and *out (free with cr_fake_http_stop), or -1. */
int cr_fake_http_start(cr_fake_http_handler handler, void *ud,
                       cr_fake_http **out);

/* Like cr_fake_http_start, on a fixed loopback port (0 = ephemeral), e.g. to
 * restart a stopped server where clients expect it. Returns 0 or -1. */
int cr_fake_http_start_port(cr_fake_http_handler handler, void *ud,
                            uint16_t port, cr_fake_http **out);

/* Stops the server (waits for its thread) and frees every record. NULL is a
 * no-op. */
void cr_fake_http_stop(cr_fake_http *s);

/* "http://127.0.0.1:PORT" (borrowed; valid until stop). */
const char *cr_fake_http_url(const cr_fake_http *s);
uint16_t cr_fake_http_port(const cr_fake_http *s);

/* Number of TCP connections the server has accepted so far. Thread-safe. */
size_t cr_fake_http_connections(cr_fake_http *s);

/* Number of requests recorded so far, and the i-th (NULL when out of
 * range). Thread-safe. */
size_t cr_fake_http_count(cr_fake_http *s);
const struct cr_fake_http_request *cr_fake_http_request_at(cr_fake_http *s,
                                                           size_t i);

/* The first value of header name (case-insensitive) in req, or NULL. */
const char *cr_fake_http_header(const struct cr_fake_http_request *req,
                                const char *name);

/* Formats the response body printf-style (copied; freed by the server). */
void cr_fake_http_set_body(struct cr_fake_http_response *resp, const char *fmt,
                           ...) __attribute__((format(printf, 2, 3)));

/* A ready-made handler: ud points to an array of routes ended by one with
 * path NULL. The first route whose method (NULL = any) and path match
 * answers; no match gives 404 {"errors":[{"message":"not found"}]}. */
struct cr_fake_http_route {
  const char *method;
  const char *path;
  int status;
  const char *body;
  const char *headers[4]; /* "Name: value", NULL-terminated early */
};
void cr_fake_http_routes(void *ud, const struct cr_fake_http_request *req,
                         struct cr_fake_http_response *resp);

/* A loopback URL nobody listens on ("http://127.0.0.1:PORT"), written to
 * buf (len bytes). Returns 0 or -1. */
int cr_fake_http_dead_url(char *buf, size_t len);

#endif
