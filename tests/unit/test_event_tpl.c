/* test_event_tpl.c: Jsonnet event templates: the product's Slack example,
 * error positions (static and runtime), refused imports, bounded stack,
 * non-object output, the `event` binding, the body written without it
 * (against jansson's text of the binding, on fixed and random events),
 * repeated renders and allocation failures. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "events/event_tpl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SLACK[] =
    "local note = if std.objectHas(event.data, \"notes\") then "
    "event.data.notes else \"A work failed\"; {\"text\": \"Alert "
    "notification: \" + note + \". For more info go to: "
    "https://activate.getlytics.com/data/integrations/work/%s?aid=%s\" % "
    "[event.data.subject_id, event.data.aid] }";

static struct cr_event_rec mk_event(const char *data_json) {
  struct cr_event_rec e = {0};
  e.id = 7;
  e.at = INT64_C(1700000000123); /* 2023-11-14T22:13:20.123Z */
  e.seq = 3;
  e.subject_type = "work";
  e.subject_id = "w-42";
  e.verb = "failed";
  e.actor = "system";
  e.data_json = (char *)data_json;
  return e;
}

/* Renders tpl for e in account "acme"; returns the parsed body. */
static json_t *render_parsed(const char *tpl, const struct cr_event_rec *e) {
  cr_event_tpl *t = NULL;
  char err[512] = "", *body = NULL;
  assert_int_equal(cr_event_tpl_new(tpl, &t, err, sizeof err), 0);
  json_t *ev = cr_event_tpl_binding(e, "acme");
  assert_non_null(ev);
  int rc = cr_event_tpl_render(t, ev, &body, err, sizeof err);
  if (rc != 0)
    fail_msg("render: %s", err);
  json_t *out = json_loads(body, JSON_DECODE_ANY, NULL);
  assert_non_null(out);
  cr__free(body);
  json_decref(ev);
  cr_event_tpl_free(t);
  return out;
}

static void expect_text(json_t *out, const char *want_text) {
  json_t *want = json_pack("{s:s}", "text", want_text);
  if (!json_equal(out, want)) {
    char *s = json_dumps(out, 0);
    fail_msg("got %s", s);
  }
  json_decref(want);
  json_decref(out);
}

static void test_slack_with_notes(void **state) {
  (void)state;
  struct cr_event_rec e = mk_event("{\"notes\":\"disk full\"}");
  expect_text(render_parsed(SLACK, &e),
              "Alert notification: disk full. For more info go to: "
              "https://activate.getlytics.com/data/integrations/work/"
              "w-42?aid=acme");
}

static void test_slack_without_notes(void **state) {
  (void)state;
  struct cr_event_rec e = mk_event(NULL);
  expect_text(render_parsed(SLACK, &e),
              "Alert notification: A work failed. For more info go to: "
              "https://activate.getlytics.com/data/integrations/work/"
              "w-42?aid=acme");
  e.data_json = "{\"other\": 1}";
  expect_text(render_parsed(SLACK, &e),
              "Alert notification: A work failed. For more info go to: "
              "https://activate.getlytics.com/data/integrations/work/"
              "w-42?aid=acme");
}

/* 1-based line and column of the first occurrence of needle in text. */
static void pos_of(const char *text, const char *needle, int *line, int *col) {
  const char *p = strstr(text, needle), *bol = text;
  assert_non_null(p);
  *line = 1;
  for (const char *q = text; q < p; q++)
    if (*q == '\n') {
      (*line)++;
      bol = q + 1;
    }
  *col = (int)(p - bol) + 1;
}

/* Checks tpl fails with an error at needle whose message contains what. */
static void expect_check_err(const char *tpl, const char *needle,
                             const char *what) {
  int line = -1, col = -1, wl, wc;
  char err[512] = "", prefix[64];
  pos_of(tpl, needle, &wl, &wc);
  assert_int_equal(cr_event_tpl_check(tpl, &line, &col, err, sizeof err),
                   CR_EPARSE);
  assert_int_equal(line, wl);
  assert_int_equal(col, wc);
  snprintf(prefix, sizeof prefix, "line %d, column %d: ", wl, wc);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
    fail_msg("message '%s' (want '%s...%s')", err, prefix, what);
  assert_null(strchr(err, '\n'));
  /* The renderer refuses it the same way. */
  cr_event_tpl *t = (cr_event_tpl *)&line;
  char err2[512] = "";
  assert_int_equal(cr_event_tpl_new(tpl, &t, err2, sizeof err2), CR_EPARSE);
  assert_null(t);
  assert_string_equal(err2, err);
}

static void test_syntax_errors(void **state) {
  (void)state;
  expect_check_err("{\"a\": }", "}", "unexpected");
  expect_check_err("{a: evnt.x}", "evnt", "Unknown variable: evnt");
  expect_check_err("local x = 1;\n{\n  a: x + ,\n}", ",", "unexpected");
  expect_check_err("{\n  a: 1,\n  b: nope,\n}", "nope",
                   "Unknown variable: nope");
  /* Empty template: end of file at line 1, column 1. */
  int line, col;
  char err[256];
  assert_int_equal(cr_event_tpl_check("", &line, &col, err, sizeof err),
                   CR_EPARSE);
  assert_int_equal(line, 1);
  assert_int_equal(col, 1);
  assert_non_null(strstr(err, "end of file"));
  /* NULL outputs are allowed. */
  assert_int_equal(cr_event_tpl_check("{", NULL, NULL, NULL, 0), CR_EPARSE);
  assert_int_equal(cr_event_tpl_check(NULL, NULL, NULL, NULL, 0), CR_EINVAL);
}

static void test_check_does_not_evaluate(void **state) {
  (void)state;
  int line = -1, col = -1;
  char err[256] = "";
  assert_int_equal(cr_event_tpl_check(SLACK, &line, &col, err, sizeof err), 0);
  assert_int_equal(line, 0);
  assert_int_equal(col, 0);
  assert_int_equal(cr_event_tpl_check("{a: event.no.such.field}", NULL, NULL,
                                      err, sizeof err),
                   0);
  assert_int_equal(cr_event_tpl_check("error 'only at runtime'", NULL, NULL,
                                      err, sizeof err),
                   0);
}

/* Renders tpl for the default event; asserts CR_EPARSE and returns the
 * message in err. */
static void render_err(const char *tpl, char *err, size_t len) {
  cr_event_tpl *t = NULL;
  char *body = (char *)tpl;
  struct cr_event_rec e = mk_event("{\"notes\":\"n\"}");
  json_t *ev = cr_event_tpl_binding(&e, "acme");
  assert_int_equal(cr_event_tpl_new(tpl, &t, err, len), 0);
  assert_int_equal(cr_event_tpl_render(t, ev, &body, err, len), CR_EPARSE);
  assert_null(body);
  assert_null(strchr(err, '\n'));
  json_decref(ev);
  cr_event_tpl_free(t);
}

static void test_runtime_errors(void **state) {
  (void)state;
  char err[512];
  int l, c;
  char want[128];
  const char *tpl = "{a: event.data.nope}";
  render_err(tpl, err, sizeof err);
  pos_of(tpl, "event", &l, &c);
  snprintf(want, sizeof want, "line %d, column %d: field does not exist: nope",
           l, c);
  assert_string_equal(err, want);

  tpl = "{\n  a: 1,\n  b: event.missing,\n}";
  render_err(tpl, err, sizeof err);
  pos_of(tpl, "event.missing", &l, &c);
  snprintf(want, sizeof want,
           "line %d, column %d: field does not exist: missing", l, c);
  assert_string_equal(err, want);

  render_err("error \"boom \" + event.verb", err, sizeof err);
  assert_non_null(strstr(err, "boom failed"));
  render_err("std.assertEqual(event.seq, 4)", err, sizeof err);
  assert_non_null(strstr(err, "Assertion failed. 3 != 4"));
  render_err("importstr \"/etc/hostname\"", err, sizeof err);
  assert_non_null(strstr(err, "imports are not allowed"));
  render_err("local f(x) = f(x + 1); f(1)", err, sizeof err);
  assert_non_null(strstr(err, "max stack frames exceeded"));
  render_err("function(x) x", err, sizeof err);
  assert_non_null(strstr(err, "manifest function"));
}

static void test_non_object_output(void **state) {
  (void)state;
  cr_event_tpl *t = NULL;
  char err[256], *body = NULL;
  json_t *ev = json_pack("{s:s}", "verb", "x");
  assert_int_equal(cr_event_tpl_new("\"x\"", &t, err, sizeof err), 0);
  assert_int_equal(cr_event_tpl_render(t, ev, &body, err, sizeof err), 0);
  assert_string_equal(body, "\"x\"");
  cr__free(body);
  cr_event_tpl_free(t);
  assert_int_equal(cr_event_tpl_new("[event.verb, 1 + 2]", &t, err, sizeof err),
                   0);
  assert_int_equal(cr_event_tpl_render(t, ev, &body, err, sizeof err), 0);
  json_t *got = json_loads(body, 0, NULL), *want = json_pack("[s,i]", "x", 3);
  assert_true(json_equal(got, want));
  json_decref(got);
  json_decref(want);
  cr__free(body);
  /* Bad arguments. */
  assert_int_equal(cr_event_tpl_render(t, NULL, &body, err, sizeof err),
                   CR_EINVAL);
  assert_int_equal(cr_event_tpl_render(NULL, ev, &body, err, sizeof err),
                   CR_EINVAL);
  cr_event_tpl_free(t);
  t = (cr_event_tpl *)ev;
  assert_int_equal(cr_event_tpl_new(NULL, &t, err, sizeof err), CR_EINVAL);
  assert_null(t);
  json_decref(ev);
}

static void test_binding(void **state) {
  (void)state;
  struct cr_event_rec e = mk_event(
      "{\"notes\":\"n\",\"verb\":\"own\",\"aid\":\"spoof\",\"n\":[1,2]}");
  json_t *b = cr_event_tpl_binding(&e, "acme");
  assert_non_null(b);
  json_t *want = json_pack(
      "{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:{s:s,s:s,s:s,s:s,s:s,s:[i,i]}}", "id",
      (json_int_t)7, "at", "2023-11-14T22:13:20.123Z", "subject_type", "work",
      "subject_id", "w-42", "verb", "failed", "actor", "system", "seq",
      (json_int_t)3, "data", "notes", "n", "verb", "own", "aid", "acme",
      "subject_type", "work", "subject_id", "w-42", "n", 1, 2);
  assert_non_null(want);
  if (!json_equal(b, want)) {
    char *s = json_dumps(b, JSON_SORT_KEYS);
    fail_msg("binding %s", s);
  }
  json_decref(want);
  json_decref(b);

  /* No actor, data not an object, no account, time before the epoch. */
  e = mk_event("[1, 2]");
  e.actor = NULL;
  e.at = -1;
  b = cr_event_tpl_binding(&e, NULL);
  want = json_pack(
      "{s:I,s:s,s:s,s:s,s:s,s:n,s:I,s:{s:s,s:s,s:s,s:n}}", "id", (json_int_t)7,
      "at", "1969-12-31T23:59:59.999Z", "subject_type", "work", "subject_id",
      "w-42", "verb", "failed", "actor", "seq", (json_int_t)3, "data",
      "subject_type", "work", "subject_id", "w-42", "verb", "failed", "aid");
  assert_true(json_equal(b, want));
  json_decref(want);
  json_decref(b);
  e.data_json = "not json";
  b = cr_event_tpl_binding(&e, "a");
  assert_int_equal(json_object_size(json_object_get(b, "data")), 4);
  json_decref(b);
  assert_null(cr_event_tpl_binding(NULL, "a"));
}

/* cr_event_tpl_body(e) against json_dumps of the binding: the same bytes
 * when same_bytes, else the same JSON. */
static void check_body(const struct cr_event_rec *e, const char *aid,
                       int same_bytes) {
  json_t *b = cr_event_tpl_binding(e, aid);
  assert_non_null(b);
  char *want = json_dumps(b, JSON_COMPACT), *got = NULL;
  assert_int_equal(cr_event_tpl_body(e, aid, &got), 0);
  json_t *parsed = json_loads(got, 0, NULL);
  if (parsed == NULL || !json_equal(parsed, b) ||
      (same_bytes && strcmp(got, want) != 0))
    fail_msg("body %s\nwant %s", got, want);
  json_decref(parsed);
  json_decref(b);
  free(want);
  cr__free(got);
}

static void test_body(void **state) {
  (void)state;
  static const char *const same[] = {
      NULL,
      "{}",
      "{\"records\":100,\"status\":\"ok\"}",
      "{\"notes\":\"n\",\"verb\":\"own\",\"aid\":\"spoof\",\"n\":[1,2]}",
      "{\"subject_id\":\"mine\"}",
      "{\"x\":{\"aid\":1,\"verb\":[\"}\",\"{\"]}}",
      "{\"s\":\"a,\\\"}]{:\\\\\",\"e\":[],\"o\":{},\"n\":null,\"t\":true}",
      "[1, 2]",
      "not json",
      "{\"a\":",
      "{\"sub\\u006aect\":1}",
      "\"text\"",
  };
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    struct cr_event_rec e = mk_event(same[i]);
    check_body(&e, "acme", 1);
    check_body(&e, NULL, 1);
  }
  /* Stored with other spacing or number forms: the same JSON. */
  static const char *const equal[] = {
      " { \"a\" : 1 , \"b\" : [ 1 , { \"c\" : -1.5e3 } ] } ",
      "{\"f\":0.1,\"g\":1E2}",
  };
  for (size_t i = 0; i < sizeof equal / sizeof equal[0]; i++) {
    struct cr_event_rec e = mk_event(equal[i]);
    check_body(&e, "acme", 0);
  }
  /* An integer jansson cannot hold is copied as stored (the binding drops
   * the whole data object). */
  struct cr_event_rec big = mk_event("{\"big\":12345678901234567890}");
  char *text = NULL;
  assert_int_equal(cr_event_tpl_body(&big, "acme", &text), 0);
  assert_non_null(strstr(text, "\"data\":{\"big\":12345678901234567890,"));
  cr__free(text);
  /* Escapes and UTF-8 in the event's own strings; no actor. */
  struct cr_event_rec e = mk_event("{\"k\":\"v\"}");
  e.subject_id = "w\"1\\\n\t\x01\x1f/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  e.actor = NULL;
  e.at = -1;
  check_body(&e, "a\x7f", 1);
  /* Not UTF-8: refused, as the binding is. */
  static const char *const bad[] = {"\xc3", "\xc0\x80", "\xed\xa0\x80",
                                    "\xf4\x90\x80\x80", "\xff"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    e.subject_id = (char *)bad[i];
    char *body = (char *)"unset";
    assert_null(cr_event_tpl_binding(&e, "a"));
    assert_int_equal(cr_event_tpl_body(&e, "a", &body), CR_ENOMEM);
    assert_null(body);
  }
  assert_int_equal(cr_event_tpl_body(NULL, "a", &(char *){NULL}), CR_EINVAL);
  assert_int_equal(cr_event_tpl_body(&e, "a", NULL), CR_EINVAL);
}

/* A random JSON value, depth-bounded, with awkward strings. */
static json_t *random_json(unsigned *seed, int depth) {
  static const char *const strs[] = {"",     "plain", "a\"b",       "c\\d",
                                     "}{][", ",:",    "\n\t",       "\xc3\xa9",
                                     "aid",  "verb",  "subject_id", "\x01"};
  int kind = rand_r(seed) % (depth > 0 ? 7 : 5);
  switch (kind) {
  case 0:
    return json_integer(rand_r(seed) - RAND_MAX / 2);
  case 1:
    return json_string(strs[rand_r(seed) % 12]);
  case 2:
    return rand_r(seed) % 2 ? json_true() : json_null();
  case 3:
    return json_real((rand_r(seed) % 1000) / 8.0);
  case 4:
    return json_false();
  case 5: {
    json_t *a = json_array();
    for (int i = rand_r(seed) % 4; i > 0; i--)
      json_array_append_new(a, random_json(seed, depth - 1));
    return a;
  }
  default: {
    json_t *o = json_object();
    for (int i = rand_r(seed) % 4; i > 0; i--)
      json_object_set_new(o, strs[rand_r(seed) % 12],
                          random_json(seed, depth - 1));
    return o;
  }
  }
}

static void test_body_random(void **state) {
  (void)state;
  unsigned seed = 42;
  for (int i = 0; i < 2000; i++) {
    json_t *d = json_object();
    for (int k = rand_r(&seed) % 5; k > 0; k--) {
      char key[16];
      snprintf(key, sizeof key, "k%d", rand_r(&seed) % 8);
      json_object_set_new(d, i % 7 == 0 ? "subject_type" : key,
                          random_json(&seed, 3));
    }
    char *text = json_dumps(d, JSON_COMPACT);
    struct cr_event_rec e = mk_event(text);
    check_body(&e, i % 2 ? "acme" : NULL, 1);
    free(text);
    json_decref(d);
  }
}

static void test_render_many(void **state) {
  (void)state;
  cr_event_tpl *t = NULL;
  char err[256], data[64], want[256], *body;
  assert_int_equal(cr_event_tpl_new(SLACK, &t, err, sizeof err), 0);
  for (int i = 0; i < 40; i++) {
    snprintf(data, sizeof data, "{\"notes\":\"note %d\"}", i);
    struct cr_event_rec e = mk_event(i % 3 ? data : NULL);
    json_t *ev = cr_event_tpl_binding(&e, "acme");
    body = NULL;
    assert_int_equal(cr_event_tpl_render(t, ev, &body, err, sizeof err), 0);
    json_t *out = json_loads(body, 0, NULL);
    snprintf(want, sizeof want, "Alert notification: %s%d. For more info",
             i % 3 ? "note " : "A work failed", i);
    if (i % 3 == 0)
      snprintf(want, sizeof want, "Alert notification: A work failed. For");
    assert_non_null(out);
    const char *text = json_string_value(json_object_get(out, "text"));
    assert_non_null(text);
    assert_memory_equal(text, want, strlen(want));
    json_decref(out);
    json_decref(ev);
    cr__free(body);
    /* An error in between leaves the renderer usable. */
    if (i == 20) {
      json_t *empty = json_object();
      assert_int_equal(cr_event_tpl_render(t, empty, &body, err, sizeof err),
                       CR_EPARSE);
      json_decref(empty);
    }
  }
  cr_event_tpl_free(t);
}

static void test_alloc_failures(void **state) {
  (void)state;
  struct cr_event_rec e = mk_event("{\"notes\":\"disk full\",\"x\":[1,{}]}");
  json_t *want = cr_event_tpl_binding(&e, "acme");
  assert_non_null(want);
  int ok = 0;
  for (long n = 0; n < 10000 && !ok; n++) {
    cr_test_alloc_fail_after(n);
    json_t *b = cr_event_tpl_binding(&e, "acme");
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (b == NULL) {
      assert_true(failed);
      continue;
    }
    assert_true(json_equal(b, want));
    json_decref(b);
    ok = !failed;
  }
  assert_true(ok);

  /* The body written directly, and through the binding. */
  static const char *const datas[] = {"{\"notes\":\"disk full\"}",
                                      "{\"aid\":1}"};
  for (size_t i = 0; i < 2; i++) {
    e = mk_event(datas[i]);
    char *ref = NULL;
    assert_int_equal(cr_event_tpl_body(&e, "acme", &ref), 0);
    ok = 0;
    for (long n = 0; n < 10000 && !ok; n++) {
      char *body = NULL;
      cr_test_alloc_fail_after(n);
      int rc = cr_event_tpl_body(&e, "acme", &body);
      int failed = cr_test_alloc_failed();
      cr_test_alloc_fail_after(-1);
      if (rc != 0) {
        assert_true(failed);
        assert_int_equal(rc, CR_ENOMEM);
        assert_null(body);
        continue;
      }
      assert_string_equal(body, ref);
      cr__free(body);
      ok = !failed;
    }
    assert_true(ok);
    cr__free(ref);
  }

  /* The renderer's own allocations (template copy, event text, body). */
  ok = 0;
  for (long n = 0; n < 10000 && !ok; n++) {
    cr_event_tpl *t = NULL;
    char err[256], *body = NULL;
    cr_test_alloc_fail_after(n);
    int rc = cr_event_tpl_new(SLACK, &t, err, sizeof err);
    if (rc == 0)
      rc = cr_event_tpl_render(t, want, &body, err, sizeof err);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    cr_event_tpl_free(t);
    if (rc != 0) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_true(failed);
      assert_null(body);
      continue;
    }
    assert_non_null(strstr(body, "disk full"));
    cr__free(body);
    ok = !failed;
  }
  assert_true(ok);
  json_decref(want);
}

int main(void) {
  cr_test_alloc_install();
  /* Route jansson through cr__malloc so the failing allocator reaches it. */
  json_set_alloc_funcs(cr__malloc, cr__free);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slack_with_notes),
      cmocka_unit_test(test_slack_without_notes),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_check_does_not_evaluate),
      cmocka_unit_test(test_runtime_errors),
      cmocka_unit_test(test_non_object_output),
      cmocka_unit_test(test_binding),
      cmocka_unit_test(test_body),
      cmocka_unit_test(test_body_random),
      cmocka_unit_test(test_render_many),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
