/* fake_http.c: the loopback HTTP test server (see fake_http.h). */
#include "fake_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cr_fake_http {
  struct MHD_Daemon *daemon;
  cr_fake_http_handler handler;
  void *ud;
  char url[64];
  uint16_t port;
  pthread_mutex_t mu;
  struct cr_fake_http_request **reqs;
  size_t n, cap;
  atomic_int stopping;
  atomic_size_t connections;
};

/* Per request: the raw URI and the body as it arrives. */
struct conn_state {
  char *uri;
  char *body;
  size_t len, cap;
  int started;
};

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static void request_free(struct cr_fake_http_request *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->nheaders; i++) {
    free(r->names[i]);
    free(r->values[i]);
  }
  free(r->names);
  free(r->values);
  free(r->method);
  free(r->path);
  free(r->query);
  free(r->body);
  free(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con) {
  (void)cls;
  (void)con;
  struct conn_state *st = calloc(1, sizeof *st);
  if (st != NULL)
    st->uri = strdup(uri != NULL ? uri : "/");
  return st;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)con;
  (void)toe;
  struct conn_state *st = *con_cls;
  if (st != NULL) {
    free(st->uri);
    free(st->body);
    free(st);
  }
  *con_cls = NULL;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value) {
  (void)kind;
  struct cr_fake_http_request *r = cls;
  char **names = realloc(r->names, (r->nheaders + 1) * sizeof *names);
  if (names == NULL)
    return MHD_NO;
  r->names = names;
  char **values = realloc(r->values, (r->nheaders + 1) * sizeof *values);
  if (values == NULL)
    return MHD_NO;
  r->values = values;
  names[r->nheaders] = strdup(key != NULL ? key : "");
  values[r->nheaders] = strdup(value != NULL ? value : "");
  r->nheaders++;
  return MHD_YES;
}

/* Builds the record of a finished request. */
static struct cr_fake_http_request *record(struct MHD_Connection *con,
                                           const char *method, const char *url,
                                           struct conn_state *st) {
  struct cr_fake_http_request *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  const char *uri = st->uri != NULL ? st->uri : url;
  const char *q = strchr(uri, '?');
  r->method = strdup(method);
  r->path = q != NULL ? dup_n(uri, (size_t)(q - uri)) : strdup(uri);
  r->query = q != NULL ? strdup(q + 1) : NULL;
  r->body = dup_n(st->body != NULL ? st->body : "", st->len);
  r->body_len = st->len;
  MHD_get_connection_values(con, MHD_HEADER_KIND, add_header, r);
  return r;
}

static void keep(struct cr_fake_http *s, struct cr_fake_http_request *r) {
  pthread_mutex_lock(&s->mu);
  if (s->n == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 16;
    struct cr_fake_http_request **n = realloc(s->reqs, ncap * sizeof *n);
    if (n == NULL) {
      pthread_mutex_unlock(&s->mu);
      request_free(r);
      return;
    }
    s->reqs = n;
    s->cap = ncap;
  }
  s->reqs[s->n++] = r;
  pthread_mutex_unlock(&s->mu);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static enum MHD_Result respond(struct cr_fake_http *s,
                               struct MHD_Connection *con,
                               struct cr_fake_http_response *out) {
  for (unsigned waited = 0;
       waited < out->delay_ms && !atomic_load(&s->stopping); waited += 10)
    sleep_ms(10);
  const char *body = out->body != NULL ? out->body : "";
  size_t len = out->body_len != 0 ? out->body_len : strlen(body);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  free(out->owned_body);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type",
                          out->content_type != NULL ? out->content_type
                                                    : "application/json");
  for (size_t i = 0; i < CR_FAKE_HTTP_MAX_HEADERS && out->headers[i]; i++) {
    const char *h = out->headers[i], *colon = strchr(h, ':');
    if (colon == NULL)
      continue;
    char *name = dup_n(h, (size_t)(colon - h));
    const char *v = colon + 1;
    while (*v == ' ')
      v++;
    if (name != NULL)
      MHD_add_response_header(r, name, v);
    free(name);
  }
  enum MHD_Result ok = MHD_queue_response(con, (unsigned)out->status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)version;
  struct cr_fake_http *s = cls;
  struct conn_state *st = *con_cls;
  if (st == NULL)
    return MHD_NO;
  if (!st->started) {
    st->started = 1;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    if (st->len + n + 1 > st->cap) {
      size_t ncap = (st->len + n + 1) * 2;
      char *b = realloc(st->body, ncap);
      if (b == NULL)
        return MHD_NO;
      st->body = b;
      st->cap = ncap;
    }
    memcpy(st->body + st->len, upload_data, n);
    st->len += n;
    *upload_data_size = 0;
    return MHD_YES;
  }
  struct cr_fake_http_request *r = record(con, method, url, st);
  if (r == NULL)
    return MHD_NO;
  keep(s, r);
  struct cr_fake_http_response out;
  memset(&out, 0, sizeof out);
  out.status = 200;
  if (s->handler != NULL) {
    s->handler(s->ud, r, &out);
  } else {
    out.status = 404;
    out.body = "{\"errors\":[{\"message\":\"not found\"}]}";
  }
  return respond(s, con, &out);
}

static void on_connection(void *cls, struct MHD_Connection *con,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  (void)con;
  (void)socket_context;
  struct cr_fake_http *s = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED)
    atomic_fetch_add(&s->connections, 1);
}

int cr_fake_http_start(cr_fake_http_handler handler, void *ud,
                       cr_fake_http **out) {
  return cr_fake_http_start_port(handler, ud, 0, out);
}

int cr_fake_http_start_port(cr_fake_http_handler handler, void *ud,
                            uint16_t port, cr_fake_http **out) {
  *out = NULL;
  struct cr_fake_http *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -1;
  s->handler = handler;
  s->ud = ud;
  pthread_mutex_init(&s->mu, NULL);
  atomic_init(&s->stopping, 0);
  atomic_init(&s->connections, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request,
      s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
  const union MHD_DaemonInfo *info =
      s->daemon != NULL
          ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT)
          : NULL;
  if (info == NULL || info->port == 0) {
    cr_fake_http_stop(s);
    return -1;
  }
  s->port = info->port;
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%u", (unsigned)s->port);
  *out = s;
  return 0;
}

void cr_fake_http_stop(cr_fake_http *s) {
  if (s == NULL)
    return;
  atomic_store(&s->stopping, 1);
  if (s->daemon != NULL)
    MHD_stop_daemon(s->daemon);
  for (size_t i = 0; i < s->n; i++)
    request_free(s->reqs[i]);
  free(s->reqs);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *cr_fake_http_url(const cr_fake_http *s) { return s->url; }

uint16_t cr_fake_http_port(const cr_fake_http *s) { return s->port; }

size_t cr_fake_http_connections(cr_fake_http *s) {
  return atomic_load(&s->connections);
}

size_t cr_fake_http_count(cr_fake_http *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

const struct cr_fake_http_request *cr_fake_http_request_at(cr_fake_http *s,
                                                           size_t i) {
  pthread_mutex_lock(&s->mu);
  const struct cr_fake_http_request *r = i < s->n ? s->reqs[i] : NULL;
  pthread_mutex_unlock(&s->mu);
  return r;
}

const char *cr_fake_http_header(const struct cr_fake_http_request *req,
                                const char *name) {
  for (size_t i = 0; req != NULL && i < req->nheaders; i++)
    if (strcasecmp(req->names[i], name) == 0)
      return req->values[i];
  return NULL;
}

void cr_fake_http_set_body(struct cr_fake_http_response *resp, const char *fmt,
                           ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  free(resp->owned_body);
  resp->owned_body = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (resp->owned_body == NULL) {
    resp->body = "";
    return;
  }
  va_start(ap, fmt);
  vsnprintf(resp->owned_body, (size_t)n + 1, fmt, ap);
  va_end(ap);
  resp->body = resp->owned_body;
  resp->body_len = (size_t)n;
}

void cr_fake_http_routes(void *ud, const struct cr_fake_http_request *req,
                         struct cr_fake_http_response *resp) {
  const struct cr_fake_http_route *rt = ud;
  for (; rt != NULL && rt->path != NULL; rt++) {
    if (rt->method != NULL && strcmp(rt->method, req->method) != 0)
      continue;
    if (strcmp(rt->path, req->path) != 0)
      continue;
    resp->status = rt->status;
    resp->body = rt->body;
    for (size_t i = 0; i < 4 && rt->headers[i] != NULL; i++)
      resp->headers[i] = rt->headers[i];
    return;
  }
  resp->status = 404;
  resp->body = "{\"errors\":[{\"message\":\"not found\"}]}";
}

int cr_fake_http_dead_url(char *buf, size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                   getsockname(fd, (struct sockaddr *)&sa, &sl) == 0
               ? 0
               : -1;
  close(fd);
  if (rc == 0)
    snprintf(buf, len, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  return rc;
}

void cr_fake_http_no_content(void *ud, const struct cr_fake_http_request *req,
                             struct cr_fake_http_response *resp) {
  (void)ud;
  (void)req;
  resp->status = 204;
}
