/* cmd_events.c: `connrun events -c FILE`: the stored system events, oldest
 * first, filtered by subject and verb, as a table, JSON lines or CSV, and
 * optionally followed as new ones are stored (polling the store locally,
 * the server's Server-Sent Events stream with --server). */
#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_client.h"
#include "cli_common.h"
#include "config/config.h"
#include "export/export_engine.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"

enum fmt { FMT_TABLE, FMT_JSONL, FMT_CSV };

struct opts {
  const char *config;
  const char *server; /* --server / CONNRUN_SERVER: read through the API */
  const char *out;    /* export: the file written */
  const char *to;     /* export: a table's database (--to URL) */
  const char *table;  /* export --to: the table (default system_events) */
  int64_t until_ms;   /* export: only events up to this time */
  struct cr_event_filter f;
  const char *verbs[CR_EVENT_FILTER_MAX_VERBS];
  int format, follow;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void help(FILE *out) {
  fputs("usage: connrun events (-c FILE | --server URL) [--subject-type T]\n"
        "                      [--subject-id ID]\n"
        "                      [--verb V]... [--since DURATION] [--after-id N]"
        "\n                      [--limit N] [--format table|jsonl|csv | "
        "--json]\n                      [--follow]\n\n"
        "Prints the stored system events, oldest first. Each has a sortable\n"
        "id, a time, the subject (type and id), the verb, the actor, a\n"
        "sequence number per subject and its data (never secrets).\n\n"
        "options:\n"
        "  --subject-type T   only this subject type (work, auth, ...)\n"
        "  --subject-id ID    only this subject\n"
        "  --verb V           only these verbs (repeatable)\n"
        "  --since WHEN       only events since WHEN: a duration back (24h,\n"
        "                     90m) or a UTC time (2026-11-23T08:00:00Z)\n"
        "  --after-id N       only events with an id above N\n"
        "  --limit N          at most N events (default 100; 10000 max per\n"
        "                     page, use --after-id to page)\n"
        "  --format F         table (default), jsonl (one JSON object per\n"
        "                     line; --json is short for it) or csv (export)\n"
        "  --follow           keep printing new events until Ctrl-C\n\n"
        "       connrun events export -c FILE --format jsonl|csv --out PATH "
        "[filters]\n"
        "  writes every matching event (no default limit) to PATH\n\n"
        "       connrun events export -c FILE --to URL [--table NAME] "
        "[--until WHEN]\n                      [filters]\n"
        "  writes every matching event (up to WHEN) into a table of a SQLite\n"
        "  file (sqlite:/path/file.db) or a PostgreSQL database\n"
        "  (postgresql://user@host/db; the password from PGPASSWORD or\n"
        "  ~/.pgpass, not the command line). The table (default\n"
        "  system_events) is created if missing and checked if present; an\n"
        "  event already in it is left as it is, so the export can be run\n"
        "  again.\n\n"
        "With --server URL (or CONNRUN_SERVER) the events are read from a\n"
        "running server's API, with the token in CONNRUN_TOKEN; --follow\n"
        "then reads its event stream (Server-Sent Events) and, when the\n"
        "connection drops, reconnects (250 ms doubling to 10 s) and resumes\n"
        "after the last event printed (Last-Event-ID).\n\n"
        "examples:\n"
        "  connrun events -c configs/demo.yaml --subject-type work\n"
        "  connrun events -c configs/demo.yaml --verb failed --since 24h "
        "--json\n"
        "  connrun events -c prod.yaml --format csv --limit 10000 > "
        "events.csv\n\n"
        "exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 store "
        "error\n",
        out);
}

static int page(cr_store *s, struct opts *o, int64_t *last, size_t *n_out);

static int parse(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->f.verbs = o->verbs;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && v)
      o->config = argv[++i];
    else if (!strcmp(a, "--subject-type") && v)
      o->f.subject_type = argv[++i];
    else if (!strcmp(a, "--subject-id") && v)
      o->f.subject_id = argv[++i];
    else if (!strcmp(a, "--verb") && v &&
             o->f.nverbs < CR_EVENT_FILTER_MAX_VERBS)
      o->verbs[o->f.nverbs++] = argv[++i];
    else if (!strcmp(a, "--since") && v &&
             cr_cli_parse_since(v, &o->f.since_ms) == 0)
      i++;
    else if (!strcmp(a, "--after-id") && v)
      o->f.after_id = strtoll(argv[++i], NULL, 10);
    else if (!strcmp(a, "--limit") && v && atoll(v) > 0)
      o->f.limit = (size_t)strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--json"))
      o->format = FMT_JSONL;
    else if (!strcmp(a, "--format") && v &&
             (!strcmp(v, "table") || !strcmp(v, "jsonl") || !strcmp(v, "csv")))
      o->format = !strcmp(argv[++i], "table") ? FMT_TABLE
                  : !strcmp(argv[i], "jsonl") ? FMT_JSONL
                                              : FMT_CSV;
    else if (!strcmp(a, "--follow"))
      o->follow = 1;
    else if (!strcmp(a, "--out") && v)
      o->out = argv[++i];
    else if (!strcmp(a, "--to") && v)
      o->to = argv[++i];
    else if (!strcmp(a, "--table") && v)
      o->table = argv[++i];
    else if (!strcmp(a, "--until") && v &&
             cr_cli_parse_since(v, &o->until_ms) == 0)
      i++;
    else if (!strcmp(a, "--server") && v)
      o->server = argv[++i];
    else
      return cr_cli_errorf("events: bad or unknown option '%s' (see 'connrun "
                           "events --help')",
                           a),
             -1;
  }
  o->server = cr_cli_server(o->server);
  if (o->config == NULL && o->server == NULL)
    return cr_cli_errorf("events: -c FILE or --server URL is required"), -1;
  return 0;
}

/* `connrun events export --to URL [--table T] [--until WHEN] [filters]`:
 * every matching event into a table (export_table.h), a batch per
 * destination transaction. */
static int export_table(cr_store *s, struct opts *o) {
  char err[512], safe[256];
  cr_export_table *t = NULL;
  const char *table = o->table ? o->table : "system_events";
  cr_export_url_redact(o->to, safe, sizeof safe);
  int rc = cr_export_table_open(o->to, table, &t, err, sizeof err);
  size_t want = o->f.limit, total = 0, written = 0, n = 0, w = 0;
  int64_t cursor = o->f.after_id;
  while (rc == 0 && (want == 0 || total < want)) {
    o->f.limit = CR_EVENT_QUERY_MAX_LIMIT;
    if (want > 0 && want - total < o->f.limit)
      o->f.limit = want - total;
    rc = cr_export_batch(s, &o->f, NULL, o->until_ms, t, &cursor, &n, &w, err,
                         sizeof err);
    total += n;
    written += w;
    if (n < o->f.limit)
      break;
  }
  cr_export_table_close(t);
  if (rc != 0) {
    cr_cli_errorf("events export: %s", err);
    return rc;
  }
  fprintf(stderr, "%zu events exported, %zu new rows in table %s of %s\n",
          total, written, table, safe);
  return 0;
}

/* `connrun events export --format jsonl|csv --out FILE [filters]`: every
 * matching event (paged by id), written to FILE (replaced atomically). */
static int export_events(cr_store *s, struct opts *o) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
  if (freopen(tmp, "w", stdout) == NULL) {
    cr_cli_errorf("events export: cannot write %s", tmp);
    return CR_EIO;
  }
  if (o->format == FMT_CSV)
    puts("id,at,subject_type,subject_id,verb,actor,seq,data");
  size_t want = o->f.limit, total = 0, n = 0;
  int64_t last = o->f.after_id;
  int rc = 0;
  do {
    o->f.after_id = last;
    o->f.limit = CR_EVENT_QUERY_MAX_LIMIT;
    if (want > 0 && want - total < o->f.limit)
      o->f.limit = want - total;
    rc = page(s, o, &last, &n);
    total += n;
  } while (rc == 0 && n > 0 && (want == 0 || total < want));
  if (fflush(stdout) != 0 || fsync(fileno(stdout)) != 0)
    rc = CR_EIO;
  if (rc == 0 && rename(tmp, o->out) != 0)
    rc = CR_EIO;
  fprintf(stderr, "%zu events written to %s\n", total, o->out);
  return rc;
}

static void fmt_time(int64_t ms, char *buf, size_t len) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

static void csv_field(const char *s) {
  fputc('"', stdout);
  for (; s && *s; s++) {
    if (*s == '"')
      fputc('"', stdout);
    fputc(*s, stdout);
  }
  fputc('"', stdout);
}

static void print_event(const struct cr_event_rec *e, int format) {
  char at[40];
  fmt_time(e->at, at, sizeof at);
  const char *data = e->data_json ? e->data_json : "{}";
  if (format == FMT_JSONL) {
    json_t *d = json_loads(data, 0, NULL);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s?, s:I, s:o}", "id",
                          (json_int_t)e->id, "at", at, "subject_type",
                          e->subject_type, "subject_id", e->subject_id, "verb",
                          e->verb, "actor", e->actor, "seq", (json_int_t)e->seq,
                          "data", d ? d : json_object());
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
  } else if (format == FMT_CSV) {
    printf("%" PRId64 ",%s,", e->id, at);
    csv_field(e->subject_type);
    fputc(',', stdout);
    csv_field(e->subject_id);
    fputc(',', stdout);
    csv_field(e->verb);
    fputc(',', stdout);
    csv_field(e->actor);
    printf(",%" PRId64 ",", e->seq);
    csv_field(data);
    fputc('\n', stdout);
  } else {
    printf("%-6" PRId64 " %s  %-12s %-20s %-13s %-7s %s\n", e->id, at,
           e->subject_type, e->subject_id, e->verb, e->actor ? e->actor : "-",
           data);
  }
}

/* The filters of o as query parameters ("&subject_type=...") into buf. */
static void filter_query(const struct opts *o, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = '\0';
  const char *names[] = {"subject_type", "subject_id"};
  const char *vals[] = {o->f.subject_type, o->f.subject_id};
  for (int i = 0; i < 2; i++)
    if (vals[i] != NULL && k < len)
      k += (size_t)snprintf(buf + k, len - k, "&%s=%s", names[i], vals[i]);
  for (size_t i = 0; i < o->f.nverbs && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "&verb=%s", o->f.verbs[i]);
  if (o->f.since_ms > 0 && k < len)
    snprintf(buf + k, len - k, "&since=%lld", (long long)o->f.since_ms);
}

/* An event of the API (cr_ctl_event_json) as a record with malloc'd
 * strings (free_remote frees them). */
static void rec_from_json(const json_t *e, struct cr_event_rec *r) {
  memset(r, 0, sizeof *r);
  r->id = json_integer_value(json_object_get(e, "id"));
  r->seq = json_integer_value(json_object_get(e, "seq"));
  cr_cli_parse_since(json_string_value(json_object_get(e, "at")), &r->at);
  const char *keys[] = {"subject_type", "subject_id", "verb", "actor"};
  char **dst[] = {&r->subject_type, &r->subject_id, &r->verb, &r->actor};
  for (int f = 0; f < 4; f++) {
    const char *v = json_string_value(json_object_get(e, keys[f]));
    *dst[f] = v ? strdup(v) : NULL;
  }
  r->data_json = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
}

/* One page from the server (GET /v1/events with the same filters) as
 * records, so both sources print alike. */
static int remote_query(const struct opts *o, struct cr_event_rec **out,
                        size_t *n) {
  char path[2048], filters[1800];
  filter_query(o, filters, sizeof filters);
  snprintf(path, sizeof path, "/v1/events?after=%lld&limit=%zu%s",
           (long long)o->f.after_id,
           o->f.limit && o->f.limit < 1000 ? o->f.limit : 1000, filters);
  long status = 0;
  json_t *body = NULL;
  if (cr_cli_call("events", o->server, "GET", path, NULL, &status, &body))
    return CR_EIO;
  if (status != 200) {
    cr_cli_api_error("events", status, body);
    json_decref(body);
    return CR_EIO;
  }
  const json_t *items = json_object_get(body, "items");
  *n = json_array_size(items);
  *out = *n ? calloc(*n, sizeof **out) : NULL;
  for (size_t i = 0; i < *n; i++)
    rec_from_json(json_array_get(items, i), &(*out)[i]);
  json_decref(body);
  return 0;
}

static void free_remote(struct cr_event_rec *ev, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(ev[i].subject_type);
    free(ev[i].subject_id);
    free(ev[i].verb);
    free(ev[i].actor);
    free(ev[i].data_json);
  }
  free(ev);
}

/* Prints one page; *last gets the id of the last event printed. */
static int page(cr_store *s, struct opts *o, int64_t *last, size_t *n_out) {
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  int rc =
      s ? cr_store_event_query(s, &o->f, &ev, &n) : remote_query(o, &ev, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    print_event(&ev[i], o->format);
    *last = ev[i].id;
  }
  if (s != NULL)
    cr_event_rec_free_list(ev, n);
  else
    free_remote(ev, n);
  fflush(stdout);
  *n_out = n;
  return rc;
}

/* One event of the stream: printed as a page's events are. */
static int on_stream_event(void *ud, const char *id, const char *event,
                           const char *data) {
  (void)id;
  (void)event;
  const struct opts *o = ud;
  json_t *e = json_loads(data, 0, NULL);
  struct cr_event_rec *r = json_is_object(e) ? malloc(sizeof *r) : NULL;
  if (r != NULL) {
    rec_from_json(e, r);
    print_event(r, o->format);
    fflush(stdout);
    free_remote(r, 1);
  }
  json_decref(e);
  return 0;
}

/* --follow --server: the event stream (GET /v1/events/stream with the same
 * filters) from the event after last, resumed with Last-Event-ID. */
static int follow_remote(struct opts *o, int64_t last) {
  char path[2048], filters[1800], last_id[32];
  filter_query(o, filters, sizeof filters);
  snprintf(path, sizeof path, "/v1/events/stream?%s",
           filters[0] ? filters + 1 : "");
  snprintf(last_id, sizeof last_id, "%lld", (long long)last);
  int ex = cr_cli_stream("events", o->server, path, last_id, on_stream_event, o,
                         &stop);
  return ex == CR_EXIT_OK ? 0 : CR_EIO;
}

static int run(cr_store *s, struct opts *o) {
  if (o->format == FMT_CSV)
    puts("id,at,subject_type,subject_id,verb,actor,seq,data");
  else if (o->format == FMT_TABLE)
    printf("%-6s %-24s  %-12s %-20s %-13s %-7s %s\n", "ID", "AT", "SUBJECT",
           "SUBJECT_ID", "VERB", "ACTOR", "DATA");
  int64_t last = o->f.after_id;
  size_t n = 0;
  int rc = page(s, o, &last, &n);
  if (!o->follow)
    return rc;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (s == NULL)
    return rc == 0 ? follow_remote(o, last) : rc;
  while (rc == 0 && !stop) {
    o->f.after_id = last;
    rc = page(s, o, &last, &n);
    if (n == 0)
      usleep(300 * 1000);
  }
  return rc;
}

int cr_cmd_events(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  struct opts o;
  int export = argc > 1 && strcmp(argv[1], "export") == 0;
  if (parse(argc - export, argv + export, &o) != 0)
    return CR_EXIT_USAGE;
  if (export && o.to != NULL && (o.out != NULL || o.server || o.follow)) {
    cr_cli_errorf("events export: --to writes a table from the store of -c "
                  "FILE (no --out, --server or --follow)");
    return CR_EXIT_USAGE;
  }
  if (export && o.to == NULL &&
      (o.out == NULL || o.format == FMT_TABLE || o.follow)) {
    cr_cli_errorf("events export: needs --format jsonl|csv and --out FILE, "
                  "or --to URL (no --follow)");
    return CR_EXIT_USAGE;
  }
  cr_store *s = NULL;
  int rc =
      o.server ? CR_EXIT_OK : cr_cli_store_open("events", o.config, &s, NULL);
  if (rc != CR_EXIT_OK)
    return rc;
  rc = export && o.to ? export_table(s, &o)
       : export       ? export_events(s, &o)
                      : run(s, &o);
  cr_store_close(s);
  if (rc == 0)
    return CR_EXIT_OK;
  cr_cli_errorf("events: %s", cr_strerror(rc));
  return rc == CR_EINVAL ? CR_EXIT_USAGE : CR_EXIT_RUNTIME;
}
