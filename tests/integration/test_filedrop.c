/* test_filedrop.c: the filedrop plugin, loaded from build/plugins through
 * the plugin host and called with a real host context and collecting sinks:
 * health of a directory, CSV (RFC 4180) and JSONL parsing, errors naming
 * file:line, the (mtime, name) cursor and its checkpoints, cancellation,
 * allocation failures, and the demo data in configs/demo-data/filedrop. */
#include "testutil.h"

#include "plugin/host_api.h"
#include "util/jsonschema.h"
#include "plugin/plugin_host.h"

#include <connrun/plugin_util.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEEP 64

/* ---- Fixture ---------------------------------------------------------------
 */

struct collect {
  cr_plugin_ctx *ctx;
  long n;                 /* records emitted */
  char *stream[MAX_KEEP]; /* the first MAX_KEEP records */
  char *record[MAX_KEEP];
  int ncp;
  char checkpoint[16][512];
  long emitted_at_cp[16]; /* n when each checkpoint came */
  const char *state;      /* handed to the plugin as committed state */
  long cancel_at_emit;    /* > 0: cancel when n reaches it */
  int cancel_at_cp;       /* > 0: cancel at that checkpoint */
  uint64_t done, total;
  char err[512];
  int err_result;
};

static int c_emit(void *ud, const char *stream, const char *json, size_t len) {
  struct collect *c = ud;
  if (c->n < MAX_KEEP) {
    c->stream[c->n] = strdup(stream);
    c->record[c->n] = strndup(json, len);
  }
  c->n++;
  if (c->cancel_at_emit > 0 && c->n == c->cancel_at_emit)
    cr_plugin_ctx_cancel(c->ctx);
  return 0;
}

static int c_checkpoint(void *ud, const char *state_json) {
  struct collect *c = ud;
  if (c->ncp < 16) {
    snprintf(c->checkpoint[c->ncp], sizeof c->checkpoint[0], "%s", state_json);
    c->emitted_at_cp[c->ncp] = c->n;
  }
  c->ncp++;
  if (c->cancel_at_cp > 0 && c->ncp == c->cancel_at_cp)
    cr_plugin_ctx_cancel(c->ctx);
  return 0;
}

static const char *c_state(void *ud) { return ((struct collect *)ud)->state; }

static void c_progress(void *ud, const char *stream, uint64_t done,
                       uint64_t total) {
  struct collect *c = ud;
  (void)stream;
  c->done = done;
  c->total = total;
}

static void collect_free(struct collect *c) {
  for (long i = 0; i < c->n && i < MAX_KEEP; i++) {
    free(c->stream[i]);
    free(c->record[i]);
  }
}

static cr_plugin_host *HOST;
/* The host table create() gets; NULL means cr_host_api_default(). */
static const struct cr_host_api *API;
static const cr_plugin *FD;
static char *DIR_;

static int group_setup(void **state) {
  (void)state;
  char err[512] = "";
  if (cr_plugin_host_new(NULL, &HOST) != 0)
    return -1;
  if (cr_plugin_host_load_file(HOST, CR_PLUGIN_DIR "/filedrop.so", err,
                               sizeof err) != 0) {
    fprintf(stderr, "cannot load filedrop.so: %s\n", err);
    return -1;
  }
  FD = cr_plugin_host_find(HOST, "filedrop");
  return FD != NULL ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  cr_plugin_host_free(HOST);
  return 0;
}

static int setup(void **state) {
  (void)state;
  DIR_ = cr_test_mkdtemp("filedrop");
  return DIR_ != NULL ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  chmod(DIR_, 0700);
  cr_test_rmtree(DIR_);
  free(DIR_);
  return 0;
}

/* Writes dir/name with len bytes of data and mtime sec (+ nsec). */
static void put(const char *name, const char *data, size_t len, long sec,
                long nsec) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", DIR_, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void puts_(const char *name, const char *text, long sec) {
  put(name, text, strlen(text), sec, 0);
}

/* A config for DIR_ with one stream. */
static const char *config1(char *buf, size_t len, const char *stream,
                           const char *pattern) {
  snprintf(buf, len,
           "{\"directory\":\"%s\",\"streams\":[{\"name\":\"%s\","
           "\"pattern\":\"%s\"}]}",
           DIR_, stream, pattern);
  return buf;
}

static void params_for(struct cr_plugin_params *p, const char *creds,
                       const char *config) {
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->authorization_id = "drop";
  p->auth_method = "none";
  p->credentials_json = creds;
  p->config_json = config;
  p->work_id = config != NULL ? "drop-sync" : NULL;
}

/* create() alone: returns its result and the message in err. */
static int try_create(const char *config, char *err, size_t errlen) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(FD);
  struct cr_plugin_params params;
  params_for(&params, "{}", config);
  void *inst = NULL;
  err[0] = '\0';
  int rc = d->create(cr_host_api_default(), &params, &inst, err, errlen);
  if (rc == 0)
    d->destroy(inst);
  return rc;
}

/* create -> read -> destroy with collecting sinks. c must be zeroed except
 * for state / cancel_at_* set by the caller. */
static int run_read(const char *config, struct collect *c) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(FD);
  struct cr_plugin_params params;
  params_for(&params, "{}", config);
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, params.authorization_id, NULL);
  struct cr_plugin_sinks sinks = {.ud = c,
                                  .emit = c_emit,
                                  .checkpoint = c_checkpoint,
                                  .state = c_state,
                                  .progress = c_progress};
  cr_plugin_ctx_set_sinks(&ctx, &sinks);
  c->ctx = &ctx;
  void *inst = NULL;
  char err[256] = "";
  int rc = d->create(API != NULL ? API : cr_host_api_default(), &params, &inst,
                     err, sizeof err);
  if (rc == 0) {
    rc = d->read(inst, &ctx);
    d->destroy(inst);
  }
  snprintf(c->err, sizeof c->err, "%s",
           rc != 0 && err[0] ? err : ctx.last_error.message);
  c->err_result = ctx.last_error.result;
  cr_plugin_ctx_cleanup(&ctx);
  c->ctx = NULL;
  return rc;
}

/* Asserts that record i parses to exactly the JSON object text want. */
static void assert_record(const struct collect *c, long i, const char *want) {
  assert_true(i < c->n);
  json_error_t e;
  json_t *got = json_loads(c->record[i], 0, &e);
  if (got == NULL)
    fail_msg("record %ld is not JSON (%s): %s", i, e.text, c->record[i]);
  json_t *exp = json_loads(want, 0, &e);
  assert_non_null(exp);
  if (!json_equal(got, exp))
    fail_msg("record %ld:\n got  %s\n want %s", i, c->record[i], want);
  json_decref(got);
  json_decref(exp);
}

/* ---- Descriptor and create --------------------------------------------------
 */

static void test_descriptor(void **state) {
  (void)state;
  const struct cr_plugin_descriptor *d = cr_plugin_desc(FD);
  assert_string_equal(d->name, "filedrop");
  assert_string_equal(d->display_name, "File drop");
  assert_string_equal(d->version, "0.1.0");
  assert_int_equal(d->capabilities,
                   CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ);
  assert_true(cr_plugin_accepts_method(FD, "none"));
  assert_false(cr_plugin_accepts_method(FD, "api_key"));
  assert_null(d->streams_json);
  assert_non_null(cr_plugin_credentials_schema(FD));
  assert_non_null(cr_plugin_config_schema(FD));
}

/* The host validates configs against the declared schema before create(). */
static int valid(const cr_schema *schema, const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  assert_non_null(j);
  int rc = cr_schema_validate(schema, j, NULL, NULL);
  json_decref(j);
  return rc == 0;
}

static void test_schemas(void **state) {
  (void)state;
  const cr_schema *cfg = cr_plugin_config_schema(FD);
  const cr_schema *creds = cr_plugin_credentials_schema(FD);
  assert_true(valid(creds, "{}"));
  assert_true(valid(creds, "{\"directory\":\"/srv/drop\"}"));
  assert_false(valid(creds, "{\"directory\":7}"));
  assert_true(valid(cfg, "{\"directory\":\"/d\",\"settle_seconds\":5,"
                         "\"streams\":[{\"name\":\"u\",\"pattern\":"
                         "\"u*.csv\",\"format\":\"csv\",\"primary_key\":"
                         "[\"id\"]}]}"));
  assert_false(valid(cfg, "{\"directory\":\"/d\",\"streams\":[]}"));
  assert_false(valid(cfg, "{\"streams\":[{\"name\":\"u\",\"pattern\":"
                          "\"u.csv\"}]}"));
  assert_false(valid(cfg, "{\"directory\":\"/d\",\"streams\":[{\"name\":"
                          "\"u\",\"pattern\":\"u\",\"format\":\"xml\"}]}"));
  assert_false(valid(cfg, "{\"directory\":\"/d\",\"streams\":[{\"name\":"
                          "\"u\"}]}"));
  assert_false(valid(cfg, "{\"directory\":\"/d\",\"extra\":1,\"streams\":"
                          "[{\"name\":\"u\",\"pattern\":\"u.csv\"}]}"));
}

static void test_create_errors(void **state) {
  (void)state;
  char cfg[1024], err[256];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":[{\"name\":\"a\","
           "\"pattern\":\"a*\"}]}",
           DIR_);
  assert_int_equal(try_create(cfg, err, sizeof err), CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(
      err, "stream a: cannot tell the format from pattern a*; set format");
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":[{\"name\":\"a\","
           "\"pattern\":\"a*\",\"format\":\"jsonl\"}]}",
           DIR_);
  assert_int_equal(try_create(cfg, err, sizeof err), 0);
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":[{\"name\":\"a\","
           "\"pattern\":\"a.csv\"},{\"name\":\"a\",\"pattern\":\"b.csv\"}]}",
           DIR_);
  assert_int_equal(try_create(cfg, err, sizeof err), CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(err, "stream a is declared twice");
  snprintf(cfg, sizeof cfg, "{\"directory\":\"%s\",\"streams\":[]}", DIR_);
  assert_int_equal(try_create(cfg, err, sizeof err), CR_PLUGIN_ERR_CONFIG);
  assert_int_equal(try_create("{\"streams\":[{\"name\":\"a\",\"pattern\":"
                              "\"a.csv\"}]}",
                              err, sizeof err),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(err, "config.directory is required");
}

/* ---- Health -----------------------------------------------------------------
 */

static int health(const char *creds, const char *config, char *reason,
                  size_t len) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(FD);
  struct cr_plugin_params params;
  params_for(&params, creds, config);
  void *inst = NULL;
  char err[256];
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err), 0);
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, "drop", NULL);
  memset(reason, 0, len);
  struct cr_plugin_health_result out = {sizeof out, -1, reason, len};
  assert_int_equal(d->health_check(inst, &ctx, &out), 0);
  cr_plugin_ctx_cleanup(&ctx);
  d->destroy(inst);
  return out.status;
}

static void test_health_existing(void **state) {
  (void)state;
  char cfg[1024], reason[512], want[1024];
  puts_("a.csv", "x\n1\n", 1000);
  puts_("b.jsonl", "{}\n", 1000);
  puts_(".hidden", "", 1000);
  char sub[1024];
  snprintf(sub, sizeof sub, "%s/subdir", DIR_);
  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(
      health("{}", config1(cfg, sizeof cfg, "a", "a.csv"), reason, 512),
      CR_PLUGIN_HEALTH_HEALTHY);
  snprintf(want, sizeof want, "directory %s is readable (2 files)", DIR_);
  assert_string_equal(reason, want);
}

static void test_health_missing(void **state) {
  (void)state;
  char dir[1024], creds[1200], reason[512], want[1200];
  snprintf(dir, sizeof dir, "%s/nope", DIR_);
  snprintf(creds, sizeof creds, "{\"directory\":\"%s\"}", dir);
  /* The authorization alone (no work config) carries the directory. */
  assert_int_equal(health(creds, NULL, reason, 512),
                   CR_PLUGIN_HEALTH_UNHEALTHY);
  snprintf(want, sizeof want, "directory %s does not exist", dir);
  assert_string_equal(reason, want);
  /* A file is not a directory. */
  puts_("file", "x", 1000);
  snprintf(creds, sizeof creds, "{\"directory\":\"%s/file\"}", DIR_);
  assert_int_equal(health(creds, NULL, reason, 512),
                   CR_PLUGIN_HEALTH_UNHEALTHY);
  snprintf(want, sizeof want, "%s/file is not a directory", DIR_);
  assert_string_equal(reason, want);
}

static void test_health_no_directory(void **state) {
  (void)state;
  char reason[512];
  assert_int_equal(health("{}", NULL, reason, 512), CR_PLUGIN_HEALTH_UNKNOWN);
  assert_string_equal(reason, "no directory configured");
}

static void test_health_config_overrides_credentials(void **state) {
  (void)state;
  char cfg[1024], reason[512], want[1024];
  assert_int_equal(health("{\"directory\":\"/nonexistent/filedrop\"}",
                          config1(cfg, sizeof cfg, "a", "a.csv"), reason, 512),
                   CR_PLUGIN_HEALTH_HEALTHY);
  snprintf(want, sizeof want, "directory %s is readable (0 files)", DIR_);
  assert_string_equal(reason, want);
}

static void test_health_unreadable(void **state) {
  (void)state;
  if (geteuid() == 0) {
    /* root bypasses permission bits: opendir() of a 000 directory works. */
    skip();
  }
  char dir[1024], creds[1200], reason[512], want[1200];
  snprintf(dir, sizeof dir, "%s/locked", DIR_);
  assert_int_equal(mkdir(dir, 0000), 0);
  snprintf(creds, sizeof creds, "{\"directory\":\"%s\"}", dir);
  assert_int_equal(health(creds, NULL, reason, 512),
                   CR_PLUGIN_HEALTH_UNHEALTHY);
  snprintf(want, sizeof want, "directory %s is not readable: Permission denied",
           dir);
  assert_string_equal(reason, want);
  chmod(dir, 0700);
}

/* ---- CSV -------------------------------------------------------------------
 */

static void test_csv_rfc4180(void **state) {
  (void)state;
  static const char csv[] =
      "\xEF\xBB\xBF"
      "id,name,note,city\r\n"
      "1,Ada,\"Hello, world\",London\r\n"
      "2,\"Grace \"\"Amazing\"\" Hopper\",\"line one\nline two\",\r\n"
      "\r\n"
      "3,,\"\",S\xC3\xB8ren \xE2\x82\xAC \xF0\x9F\x98\x80\r\n"
      "4,\"crlf\r\ninside\",tab\there,\"back\\slash\"\r\n"
      "5,ctl\x01x,\"a\"\"\",end";
  puts_("users.csv", csv, 1000);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(
      run_read(config1(cfg, sizeof cfg, "users", "users*.csv"), &c), 0);
  assert_int_equal(c.n, 5);
  assert_string_equal(c.stream[0], "users");
  assert_record(&c, 0,
                "{\"id\":\"1\",\"name\":\"Ada\",\"note\":\"Hello, world\","
                "\"city\":\"London\"}");
  assert_record(&c, 1,
                "{\"id\":\"2\",\"name\":\"Grace \\\"Amazing\\\" Hopper\","
                "\"note\":\"line one\\nline two\",\"city\":\"\"}");
  assert_record(&c, 2,
                "{\"id\":\"3\",\"name\":\"\",\"note\":\"\",\"city\":"
                "\"S\xC3\xB8ren \xE2\x82\xAC \xF0\x9F\x98\x80\"}");
  assert_record(&c, 3,
                "{\"id\":\"4\",\"name\":\"crlf\\r\\ninside\",\"note\":"
                "\"tab\\there\",\"city\":\"back\\\\slash\"}");
  assert_record(&c, 4,
                "{\"id\":\"5\",\"name\":\"ctl\\u0001x\",\"note\":\"a\\\"\","
                "\"city\":\"end\"}");
  /* Key order follows the header. */
  assert_true(strncmp(c.record[0], "{\"id\":", 6) == 0);
  assert_int_equal(c.ncp, 1);
  assert_string_equal(c.checkpoint[0],
                      "{\"mtime_ns\":1000000000000,\"name\":\"users.csv\"}");
  assert_int_equal(c.done, 1);
  assert_int_equal(c.total, 1);
  collect_free(&c);
}

static void test_csv_lf_and_cr_line_ends(void **state) {
  (void)state;
  puts_("lf.csv", "a,b\n1,2\n3,4", 1000);
  puts_("mac.csv", "a,b\r5,6\r", 1001);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "*.csv"), &c), 0);
  assert_int_equal(c.n, 3);
  assert_record(&c, 0, "{\"a\":\"1\",\"b\":\"2\"}");
  assert_record(&c, 1, "{\"a\":\"3\",\"b\":\"4\"}");
  assert_record(&c, 2, "{\"a\":\"5\",\"b\":\"6\"}");
  collect_free(&c);
}

/* A bad file fails the read with CONFIG naming file:line; files before it
 * were checkpointed, nothing after it is read. */
static void expect_csv_error(const char *text, const char *want) {
  puts_("good.csv", "a\n1\n", 1000);
  puts_("later.csv", "a\n9\n", 3000);
  puts_("bad.csv", text, 2000);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "*.csv"), &c),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(c.err, want);
  assert_int_equal(c.err_result, CR_PLUGIN_ERR_CONFIG);
  assert_int_equal(c.ncp, 1);
  assert_string_equal(c.checkpoint[0],
                      "{\"mtime_ns\":1000000000000,\"name\":\"good.csv\"}");
  collect_free(&c);
}

static void test_csv_errors(void **state) {
  (void)state;
  expect_csv_error("a,b\n1,2\n3\n",
                   "bad.csv:3: row has 1 fields, header has 2");
  expect_csv_error("a,b\n1,2\n3,4,5\n",
                   "bad.csv:3: row has 3 fields, header has 2");
  expect_csv_error("a,b\n1,\"2\nx\n", "bad.csv:2: unterminated quoted field");
  expect_csv_error("a,b\n\"1\"x,2\n",
                   "bad.csv:2: unexpected character after a quote");
  expect_csv_error("a,b\n1,\"multi\nline\"\n\xC3\x28,2\n",
                   "bad.csv:4: invalid UTF-8");
  expect_csv_error("a,a\n1,2\n", "bad.csv:1: duplicate column name in header");
  static const char nul[] = "a\nx\0y\n";
  put("bad.csv", nul, sizeof nul - 1, 2000, 0);
  struct collect c = {0};
  char cfg[1024];
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "bad.csv"), &c),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(c.err, "bad.csv:2: NUL byte");
  collect_free(&c);
}

/* ---- JSONL ------------------------------------------------------------------
 */

static void test_jsonl_passthrough(void **state) {
  (void)state;
  puts_("dev.jsonl",
        "{\"id\":1,\"tags\":[\"a\",\"b\"],\"nested\":{\"x\":null}}\n"
        "\n"
        "   {\"id\":2,\"name\":\"S\xC3\xB8ren\"}  \r\n"
        "{\"id\":3}",
        1000);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "dev", "*.jsonl"), &c), 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(
      c.record[0], "{\"id\":1,\"tags\":[\"a\",\"b\"],\"nested\":{\"x\":null}}");
  assert_string_equal(c.record[1], "{\"id\":2,\"name\":\"S\xC3\xB8ren\"}");
  assert_string_equal(c.record[2], "{\"id\":3}");
  assert_int_equal(c.ncp, 1);
  collect_free(&c);
}

static void test_jsonl_bad_line(void **state) {
  (void)state;
  puts_("bad.jsonl", "{\"id\":1}\n\n[1,2]\n{\"id\":4}\n", 1000);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "dev", "*.jsonl"), &c),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(c.err, "bad.jsonl:3: not a JSON object");
  assert_int_equal(c.n, 1);
  assert_int_equal(c.ncp, 0);
  collect_free(&c);
}

/* ---- Cursor, checkpoints, streams -----------------------------------------
 */

static void test_incremental(void **state) {
  (void)state;
  puts_("u1.csv", "id\n1\n2\n", 1000);
  puts_("u2.csv", "id\n3\n", 1100);
  char cfg[1024];
  config1(cfg, sizeof cfg, "u", "u*.csv");
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), 0);
  assert_int_equal(c.n, 3);
  /* One checkpoint after each file, covering exactly its records. */
  assert_int_equal(c.ncp, 2);
  assert_int_equal(c.emitted_at_cp[0], 2);
  assert_int_equal(c.emitted_at_cp[1], 3);
  assert_string_equal(c.checkpoint[0],
                      "{\"mtime_ns\":1000000000000,\"name\":\"u1.csv\"}");
  assert_string_equal(c.checkpoint[1],
                      "{\"mtime_ns\":1100000000000,\"name\":\"u2.csv\"}");
  char committed[512];
  snprintf(committed, sizeof committed, "%s", c.checkpoint[1]);
  collect_free(&c);

  /* Nothing new: nothing read, no checkpoint. */
  struct collect c2 = {.state = committed};
  assert_int_equal(run_read(cfg, &c2), 0);
  assert_int_equal(c2.n, 0);
  assert_int_equal(c2.ncp, 0);

  /* A new file with a later mtime (and one nanosecond later still). */
  puts_("u0.csv", "id\n4\n", 1100);
  put("u3.csv", "id\n5\n", 5, 1100, 1);
  struct collect c3 = {.state = committed};
  assert_int_equal(run_read(cfg, &c3), 0);
  assert_int_equal(c3.n, 1);
  assert_record(&c3, 0, "{\"id\":\"5\"}");
  assert_int_equal(c3.ncp, 1);
  assert_string_equal(c3.checkpoint[0],
                      "{\"mtime_ns\":1100000000001,\"name\":\"u3.csv\"}");
  collect_free(&c3);
}

static void test_mtime_tie_broken_by_name(void **state) {
  (void)state;
  puts_("b.csv", "id\nb\n", 2000);
  puts_("a.csv", "id\na\n", 2000);
  puts_("c.csv", "id\nc\n", 2000);
  puts_("z.csv", "id\nz\n", 1000);
  char cfg[1024];
  config1(cfg, sizeof cfg, "t", "*.csv");
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), 0);
  assert_int_equal(c.n, 4);
  assert_record(&c, 0, "{\"id\":\"z\"}");
  assert_record(&c, 1, "{\"id\":\"a\"}");
  assert_record(&c, 2, "{\"id\":\"b\"}");
  assert_record(&c, 3, "{\"id\":\"c\"}");
  collect_free(&c);
  /* Resume after a.csv (same mtime as b and c): b and c only. */
  struct collect c2 = {.state =
                           "{\"mtime_ns\":2000000000000,\"name\":\"a.csv\"}"};
  assert_int_equal(run_read(cfg, &c2), 0);
  assert_int_equal(c2.n, 2);
  assert_record(&c2, 0, "{\"id\":\"b\"}");
  assert_record(&c2, 1, "{\"id\":\"c\"}");
  collect_free(&c2);
}

static void test_bad_state(void **state) {
  (void)state;
  puts_("a.csv", "id\n1\n", 1000);
  char cfg[1024];
  struct collect c = {.state = "{\"last\":3}"};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "*.csv"), &c),
                   CR_PLUGIN_ERR_CONFIG);
  assert_int_equal(c.n, 0);
}

static void test_streams_and_patterns(void **state) {
  (void)state;
  puts_("users-1.csv", "id\n1\n", 1000);
  puts_("devices.jsonl", "{\"d\":1}\n", 1001);
  puts_("users-2.txt", "id\n2\n", 1002);  /* no stream matches */
  puts_(".users-3.csv", "id\n3\n", 1003); /* hidden */
  puts_("users-all.jsonl", "{\"u\":1}\n", 1004);
  puts_("users-\xff.csv", "id\n4\n", 1005); /* name not UTF-8: skipped */
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":["
           "{\"name\":\"users\",\"pattern\":\"users*.csv\","
           "\"primary_key\":[\"id\"]},"
           "{\"name\":\"everything\",\"pattern\":\"*.jsonl\"},"
           "{\"name\":\"users_json\",\"pattern\":\"users*.jsonl\"}]}",
           DIR_);
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.stream[0], "users");
  assert_string_equal(c.stream[1], "everything");
  /* A file goes to the first stream that matches it. */
  assert_string_equal(c.stream[2], "everything");
  assert_string_equal(c.record[2], "{\"u\":1}");
  assert_int_equal(c.ncp, 3);
  assert_int_equal(c.done, 2);
  assert_int_equal(c.total, 2);
  collect_free(&c);
}

/* settle_seconds: a file modified just now waits; once older it is read. */
static void test_settle_seconds(void **state) {
  (void)state;
  puts_("old.csv", "id\n1\n", 1000);
  puts_("fresh.csv", "id\n2\n", (long)time(NULL));
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"settle_seconds\":600,\"streams\":["
           "{\"name\":\"t\",\"pattern\":\"*.csv\"}]}",
           DIR_);
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), 0);
  assert_int_equal(c.n, 1);
  assert_record(&c, 0, "{\"id\":\"1\"}");
  assert_int_equal(c.ncp, 1);
  char committed[512];
  snprintf(committed, sizeof committed, "%s", c.checkpoint[0]);
  collect_free(&c);
  puts_("fresh.csv", "id\n2\n", (long)time(NULL) - 601);
  struct collect c2 = {.state = committed};
  assert_int_equal(run_read(cfg, &c2), 0);
  assert_int_equal(c2.n, 1);
  assert_record(&c2, 0, "{\"id\":\"2\"}");
  collect_free(&c2);
  char err[256];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"settle_seconds\":-1,\"streams\":["
           "{\"name\":\"t\",\"pattern\":\"*.csv\"}]}",
           DIR_);
  assert_int_equal(try_create(cfg, err, sizeof err), CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(err, "config.settle_seconds must be 0..86400");
}

static void test_missing_directory_read(void **state) {
  (void)state;
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s/gone\",\"streams\":[{\"name\":\"a\","
           "\"pattern\":\"a.csv\"}]}",
           DIR_);
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), CR_PLUGIN_ERR_CONFIG);
  assert_non_null(strstr(c.err, "No such file or directory"));
}

/* ---- Cancellation -------------------------------------------------------- */

/* A CSV of n rows. */
static void put_rows(const char *name, long n, long sec) {
  size_t cap = (size_t)n * 16 + 16, len = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  len += (size_t)snprintf(buf, cap, "id,v\n");
  for (long i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%ld,x\n", i);
  put(name, buf, len, sec, 0);
  free(buf);
}

static void test_cancel_between_files(void **state) {
  (void)state;
  put_rows("a.csv", 3, 1000);
  put_rows("b.csv", 3, 1001);
  char cfg[1024];
  struct collect c = {.cancel_at_cp = 1};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "*.csv"), &c),
                   CR_PLUGIN_ERR_CANCELLED);
  assert_int_equal(c.n, 3);
  assert_int_equal(c.ncp, 1);
  collect_free(&c);
}

/* An emit that does not look at the cancel flag, so only the plugin's own
 * polling of api->cancelled can stop it. */
static int raw_emit(cr_plugin_ctx *ctx, const char *stream, const char *json,
                    size_t len) {
  return ctx->sinks.emit(ctx->sinks.ud, stream, json, len);
}

/* Cancelled mid-file: emit refuses the next record at once; with an emit
 * that does not check, the plugin stops at its next poll (every 1024
 * records). No checkpoint for the unfinished file either way. */
static void test_cancel_within_file(void **state) {
  (void)state;
  put_rows("big.csv", 5000, 1000);
  char cfg[1024];
  config1(cfg, sizeof cfg, "t", "*.csv");
  struct collect c = {.cancel_at_emit = 10};
  assert_int_equal(run_read(cfg, &c), CR_PLUGIN_ERR_CANCELLED);
  assert_int_equal(c.n, 10);
  assert_int_equal(c.ncp, 0);
  collect_free(&c);

  struct cr_host_api raw = *cr_host_api_default();
  raw.emit = raw_emit;
  API = &raw;
  struct collect c2 = {.cancel_at_emit = 10};
  int rc = run_read(cfg, &c2);
  API = NULL;
  assert_int_equal(rc, CR_PLUGIN_ERR_CANCELLED);
  assert_int_equal(c2.n, 1024);
  assert_int_equal(c2.ncp, 0);
  collect_free(&c2);
}

/* A large file streams through (the 64 KiB read buffer is crossed many
 * times, also inside a quoted field). */
static void test_large_file(void **state) {
  (void)state;
  put_rows("big.csv", 20000, 1000);
  size_t n = 200000;
  char *q = malloc(n + 16);
  assert_non_null(q);
  memcpy(q, "a\n\"", 3);
  memset(q + 3, 'q', n);
  memcpy(q + 3 + n, "\"\n", 2);
  put("long.csv", q, n + 5, 1001, 0);
  free(q);
  char cfg[1024];
  struct collect c = {0};
  assert_int_equal(run_read(config1(cfg, sizeof cfg, "t", "*.csv"), &c), 0);
  assert_int_equal(c.n, 20001);
  assert_record(&c, 5, "{\"id\":\"5\",\"v\":\"x\"}");
  assert_int_equal(c.ncp, 2);
  assert_int_equal(c.emitted_at_cp[0], 20000);
  collect_free(&c);
}

/* ---- Allocation failures ----------------------------------------------------
 */

static void test_alloc_failures(void **state) {
  (void)state;
  puts_("a.csv", "id,name\n1,\"x,y\"\n2,z\n", 1000);
  puts_("b.jsonl", "{\"k\":1}\n", 1001);
  char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":["
           "{\"name\":\"a\",\"pattern\":\"*.csv\"},"
           "{\"name\":\"b\",\"pattern\":\"*.jsonl\"}]}",
           DIR_);
  cr_test_alloc_install();
  int ok = 0;
  for (long i = 0; i < 1000 && !ok; i++) {
    cr_test_alloc_fail_after(i);
    struct collect c = {0};
    int rc = run_read(cfg, &c);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      assert_int_equal(c.n, 3);
      ok = 1;
    } else {
      assert_int_equal(rc, CR_PLUGIN_ERR_SYSTEM);
    }
    collect_free(&c);
  }
  assert_true(ok);
}

/* ---- Demo data --------------------------------------------------------------
 */

static void test_demo_data(void **state) {
  (void)state;
  const char *cfg =
      "{\"directory\":\"" CR_SOURCE_DIR "/configs/demo-data/filedrop\","
      "\"streams\":["
      "{\"name\":\"users\",\"pattern\":\"users*.csv\",\"primary_key\":"
      "[\"id\"]},"
      "{\"name\":\"devices\",\"pattern\":\"devices*.jsonl\"},"
      "{\"name\":\"orders\",\"pattern\":\"orders-*.csv\"}]}";
  struct collect c = {0};
  assert_int_equal(run_read(cfg, &c), 0);
  assert_int_equal(c.n, 20 + 15 + 8);
  assert_int_equal(c.ncp, 3);
  long users = 0, devices = 0, orders = 0;
  for (long i = 0; i < c.n; i++) {
    json_t *o = json_loads(c.record[i], 0, NULL);
    assert_true(json_is_object(o));
    if (strcmp(c.stream[i], "users") == 0) {
      users++;
      assert_int_equal(json_object_size(o), 8);
      assert_non_null(
          strchr(json_string_value(json_object_get(o, "email")), '@'));
    } else if (strcmp(c.stream[i], "devices") == 0) {
      devices++;
      assert_true(json_is_string(json_object_get(o, "device_id")));
    } else {
      orders++;
      assert_string_equal(c.stream[i], "orders");
    }
    json_decref(o);
  }
  assert_int_equal(users, 20);
  assert_int_equal(devices, 15);
  assert_int_equal(orders, 8);
  collect_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor),
      cmocka_unit_test(test_schemas),
      cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_existing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_no_directory, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_config_overrides_credentials,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_unreadable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_csv_rfc4180, setup, teardown),
      cmocka_unit_test_setup_teardown(test_csv_lf_and_cr_line_ends, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_csv_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jsonl_passthrough, setup, teardown),
      cmocka_unit_test_setup_teardown(test_jsonl_bad_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mtime_tie_broken_by_name, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_streams_and_patterns, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_settle_seconds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_directory_read, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_between_files, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancel_within_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_demo_data, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
