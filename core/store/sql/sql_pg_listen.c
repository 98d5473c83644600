/* sql_pg_listen.c: the store's listener (store_listen.h) on PostgreSQL: a
 * thread with its own libpq connection that LISTENs on the channel
 * "connrun" and waits with poll() on the connection's socket and a stop
 * pipe; each notification's payload ("claims", "events", "all") becomes a
 * callback. A dropped connection is made again, 1 s apart then up to
 * 10 s, followed by a CR_STORE_NEWS_ALL callback (what was sent meanwhile
 * is lost). */
#define _GNU_SOURCE /* pipe2 */
#include "store/store_listen.h"

#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"

#include <ctype.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct cr_store_listener {
  pthread_t thread;
  int stop[2]; /* the stop pipe: written once by cr_store_listen_stop */
  char *url;
  PGconn *conn;
  cr_store_news_fn fn;
  void *ud;
};

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Connects and LISTENs; NULL on failure (errbuf says why). */
static PGconn *connect_listen(const char *url, char *errbuf, size_t errlen) {
  PGconn *c = PQconnectdb(url);
  if (c != NULL && PQstatus(c) == CONNECTION_OK) {
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, "LISTEN connrun");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok)
      return c;
  }
  snprintf(errbuf, errlen, "cannot listen on PostgreSQL: %s",
           c != NULL ? PQerrorMessage(c) : "out of memory");
  size_t n = strlen(errbuf);
  while (n > 0 && isspace((unsigned char)errbuf[n - 1]))
    errbuf[--n] = '\0';
  PQfinish(c);
  return NULL;
}

static int news_of(const char *payload) {
  if (strcmp(payload, "claims") == 0)
    return CR_STORE_NEWS_CLAIMS;
  if (strcmp(payload, "events") == 0)
    return CR_STORE_NEWS_EVENTS;
  return CR_STORE_NEWS_ALL;
}

/* Waits up to ms (-1: no limit) for the socket fd (-1: none) or the stop
 * pipe. Returns 1 to stop, else 0. */
static int wait_for(struct cr_store_listener *l, int fd, int ms) {
  struct pollfd p[2] = {{.fd = l->stop[0], .events = POLLIN},
                        {.fd = fd, .events = POLLIN}};
  int n = poll(p, fd >= 0 ? 2 : 1, ms);
  return n > 0 && (p[0].revents & (POLLIN | POLLHUP)) != 0;
}

/* Reads what arrived and calls back; 0, or -1 when the connection broke. */
static int drain(struct cr_store_listener *l) {
  if (!PQconsumeInput(l->conn))
    return -1;
  int news = 0;
  PGnotify *n;
  while ((n = PQnotifies(l->conn)) != NULL) {
    news |= news_of(n->extra != NULL ? n->extra : "");
    PQfreemem(n);
  }
  if (news != 0)
    l->fn(l->ud, news);
  return 0;
}

static void *listen_main(void *arg) {
  struct cr_store_listener *l = arg;
  int backoff_ms = 1000;
  for (;;) {
    if (l->conn == NULL) {
      char err[256];
      l->conn = connect_listen(l->url, err, sizeof err);
      if (l->conn == NULL) {
        if (wait_for(l, -1, backoff_ms))
          return NULL;
        backoff_ms = backoff_ms < 10000 ? backoff_ms * 2 : 10000;
        continue;
      }
      backoff_ms = 1000;
      l->fn(l->ud, CR_STORE_NEWS_ALL); /* what was sent meanwhile is lost */
    }
    if (wait_for(l, PQsocket(l->conn), -1))
      return NULL;
    if (drain(l) != 0) {
      PQfinish(l->conn);
      l->conn = NULL;
    }
  }
}

int cr_store_listen(const char *where, cr_store_news_fn fn, void *ud,
                    cr_store_listener **out, char *errbuf, size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (where == NULL || fn == NULL || out == NULL)
    return CR_EINVAL;
  if (strncmp(where, "postgresql:", 11) != 0 &&
      strncmp(where, "postgres:", 9) != 0) {
    snprintf(errbuf, errlen, "only a PostgreSQL store has notifications");
    return CR_ENOTSUP;
  }
  struct cr_store_listener *l = cr__calloc(1, sizeof *l);
  if (l == NULL || (l->url = cr__strdup(where)) == NULL) {
    cr__free(l);
    return CR_ENOMEM;
  }
  l->fn = fn;
  l->ud = ud;
  l->stop[0] = l->stop[1] = -1;
  l->conn = connect_listen(where, errbuf, errlen);
  int rc = l->conn == NULL ? CR_ESTORE : 0;
  if (rc == 0 && pipe2(l->stop, O_CLOEXEC) != 0)
    rc = CR_EIO;
  if (rc == 0 && pthread_create(&l->thread, NULL, listen_main, l) != 0)
    rc = CR_ENOMEM;
  if (rc != 0) {
    if (l->stop[0] >= 0) {
      close(l->stop[0]);
      close(l->stop[1]);
    }
    PQfinish(l->conn);
    cr__free(l->url);
    cr__free(l);
    return rc;
  }
  *out = l;
  return 0;
}

void cr_store_listen_stop(cr_store_listener *l) {
  if (l == NULL)
    return;
  char b = 1;
  if (write(l->stop[1], &b, 1) != 1) {
    /* the pipe is ours and empty: a write cannot fail; close as a fallback */
    close(l->stop[1]);
    l->stop[1] = -1;
  }
  pthread_join(l->thread, NULL);
  close(l->stop[0]);
  if (l->stop[1] >= 0)
    close(l->stop[1]);
  PQfinish(l->conn);
  cr__free(l->url);
  cr__free(l);
}
