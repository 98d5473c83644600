/* test_redact.c: the secret redactor: plain, URL-encoded, JSON-escaped and
 * base64 forms, overlapping secrets, short secrets, the tail rule, header and
 * URL rules, allocation failures and concurrent use. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK CR_REDACT_MARK

/* Redacts in with r and returns a malloc'd copy (test-owned). */
static char *red(const cr_redactor *r, const char *in) {
  char *out = NULL;
  assert_int_equal(cr_redact(r, in, &out), 0);
  assert_non_null(out);
  char *copy = strdup(out);
  cr__free(out);
  return copy;
}

static void assert_redacts(const cr_redactor *r, const char *in,
                           const char *want) {
  char *got = red(r, in);
  assert_string_equal(got, want);
  free(got);
}

static cr_redactor *make(const char *const *secrets) {
  cr_redactor *r = NULL;
  assert_int_equal(cr_redactor_new(&r), 0);
  for (size_t i = 0; secrets[i] != NULL; i++)
    assert_int_equal(cr_redactor_add(r, secrets[i]), 0);
  return r;
}

static void test_plain(void **state) {
  (void)state;
  const char *s[] = {"sk_live_abcdef123456", NULL};
  cr_redactor *r = make(s);
  assert_redacts(r, "key=sk_live_abcdef123456 end", "key=" MARK " end");
  assert_redacts(r, "sk_live_abcdef123456", MARK);
  assert_redacts(r, "a sk_live_abcdef123456 b sk_live_abcdef123456",
                 "a " MARK " b " MARK);
  assert_redacts(r, "nothing secret here", "nothing secret here");
  assert_redacts(r, "", "");
  /* A near miss is left alone. */
  assert_redacts(r, "sk_live_abcdef12345", "sk_live_abcdef12345");
  cr_redactor_free(r);
}

static void test_null_redactor_copies(void **state) {
  (void)state;
  assert_redacts(NULL, "plain text", "plain text");
  char *out = (char *)1;
  assert_int_equal(cr_redact(NULL, NULL, &out), CR_EINVAL);
  assert_null(out);
  assert_int_equal(cr_redact(NULL, "x", NULL), CR_EINVAL);
}

static void test_url_encoded_forms(void **state) {
  (void)state;
  const char *s[] = {"p@ss/w rd+x", NULL};
  cr_redactor *r = make(s);
  assert_redacts(r, "https://h/?password=p%40ss%2Fw%20rd%2Bx&n=1",
                 "https://h/?password=" MARK "&n=1");
  assert_redacts(r, "q=p%40ss%2fw%20rd%2bx", "q=" MARK);
  assert_redacts(r, "form: p%40ss%2Fw+rd%2Bx.", "form: " MARK ".");
  assert_redacts(r, "raw p@ss/w rd+x", "raw " MARK);
  cr_redactor_free(r);
}

static void test_json_escaped_form(void **state) {
  (void)state;
  const char *s[] = {"ab\"cd\\ef", NULL};
  cr_redactor *r = make(s);
  assert_redacts(r, "{\"k\":\"ab\\\"cd\\\\ef\"}", "{\"k\":\"" MARK "\"}");
  cr_redactor_free(r);
}

static void test_base64_forms(void **state) {
  (void)state;
  const char *s[] = {"Pa55w0rd!xyz", NULL};
  cr_redactor *r = make(s);
  /* The whole encoding of the secret alone. */
  assert_redacts(r, "token UGE1NXcwcmQheHl6 end", "token " MARK " end");
  /* Basic auth: base64("user:Pa55w0rd!xyz"), "us:..." and "u:..." put the
   * secret at the three byte alignments. Only a couple of edge characters
   * (which also depend on the neighbours) may survive. */
  const char *enc[] = {"dXNlcjpQYTU1dzByZCF4eXo=", "dXM6UGE1NXcwcmQheHl6",
                       "dTpQYTU1dzByZCF4eXo=", "OlBhNTV3MHJkIXh5ejo="};
  const char *middle[] = {"YTU1dzByZCF4", "UGE1NXcwcmQheHl6", "YTU1dzByZCF4",
                          "NTV3MHJkIXh5"};
  for (size_t i = 0; i < 4; i++) {
    char in[128];
    snprintf(in, sizeof in, "Authorization: Basic %s", enc[i]);
    char *out = red(r, in);
    assert_non_null(strstr(out, MARK));
    assert_null(strstr(out, middle[i]));
    const char *m = strstr(out, MARK);
    size_t before = (size_t)(m - out) - strlen("Authorization: Basic ");
    size_t after = strlen(m + strlen(MARK));
    assert_true(before <= 7); /* the prefix's own characters + 1 edge */
    assert_true(after <= 3);  /* 2 edge characters + padding */
    free(out);
  }
  cr_redactor_free(r);
}

static void test_short_secrets_are_stored_not_matched(void **state) {
  (void)state;
  const char *s[] = {"abc", NULL};
  cr_redactor *r = make(s);
  assert_int_equal(cr_redactor_count(r), 1);
  assert_redacts(r, "abcabc", "abcabc");
  assert_int_equal(cr_redactor_add(r, "abcd"), 0);
  assert_int_equal(cr_redactor_count(r), 2);
  assert_redacts(r, "xabcdx", "x" MARK "x");
  cr_redactor_free(r);
}

static void test_add_rules(void **state) {
  (void)state;
  cr_redactor *r = NULL;
  assert_int_equal(cr_redactor_new(&r), 0);
  assert_int_equal(cr_redactor_add(r, ""), CR_EINVAL);
  assert_int_equal(cr_redactor_add(r, NULL), CR_EINVAL);
  assert_int_equal(cr_redactor_add(NULL, "secret"), CR_EINVAL);
  assert_int_equal(cr_redactor_add(r, "secret-one"), 0);
  assert_int_equal(cr_redactor_add(r, "secret-one"), 0);
  assert_int_equal(cr_redactor_count(r), 1);
  assert_int_equal(cr_redactor_count(NULL), 0);
  /* Binary secrets with a NUL byte. */
  const char bin[] = {'k', 'e', '\0', 'y', '9'};
  assert_int_equal(cr_redactor_add_n(r, bin, sizeof bin), 0);
  const char text[] = {'<', 'k', 'e', '\0', 'y', '9', '>'};
  char *out = NULL;
  size_t n = 0;
  assert_int_equal(cr_redact_ex(r, text, sizeof text, 0, &out, &n), 0);
  assert_int_equal(n, 2 + strlen(MARK));
  assert_string_equal(out, "<" MARK ">");
  cr__free(out);
  cr_redactor_free(r);
  cr_redactor_free(NULL);
}

static void test_overlapping_and_nested(void **state) {
  (void)state;
  const char *s[] = {"abcdef12", "ef12ghij", "secretvalue",
                     "value123", "aaaa",     NULL};
  cr_redactor *r = make(s);
  /* Overlap: neither secret leaves a piece behind. */
  assert_redacts(r, "xxabcdef12ghijyy", "xx" MARK "yy");
  /* Nested and chained. */
  assert_redacts(r, "[secretvalue123]", "[" MARK "]");
  assert_redacts(r, "value123 only", MARK " only");
  /* Self-overlapping occurrences. */
  assert_redacts(r, "baaaaaab", "b" MARK "b");
  /* Adjacent occurrences merge into one mark. */
  assert_redacts(r, "abcdef12abcdef12", MARK);
  cr_redactor_free(r);
}

static void test_tail_flag(void **state) {
  (void)state;
  const char *s[] = {"SG.abcdefghijkl", NULL};
  cr_redactor *r = make(s);
  const char *cut = "reason: key SG.abcdef";
  char *out = NULL;
  assert_int_equal(cr_redact_ex(r, cut, strlen(cut), 0, &out, NULL), 0);
  assert_string_equal(out, cut);
  cr__free(out);
  assert_int_equal(
      cr_redact_ex(r, cut, strlen(cut), CR_REDACT_TAIL, &out, NULL), 0);
  assert_string_equal(out, "reason: key " MARK);
  cr__free(out);
  /* Fewer than CR_REDACT_MIN_LEN trailing bytes are not touched. */
  assert_int_equal(cr_redact_ex(r, "xx SG.", 6, CR_REDACT_TAIL, &out, NULL), 0);
  assert_string_equal(out, "xx SG.");
  cr__free(out);
  cr_redactor_free(r);
}

static void test_redact_into(void **state) {
  (void)state;
  const char *s[] = {"topsecret99", NULL};
  cr_redactor *r = make(s);
  char buf[16];
  assert_int_equal(cr_redact_into(r, "k=topsecret99", 0, buf, sizeof buf), 0);
  assert_string_equal(buf, "k=" MARK);
  /* Truncation happens after redaction and never splits UTF-8. */
  char small[8];
  assert_int_equal(cr_redact_into(r, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0,
                                  small, sizeof small),
                   0);
  assert_string_equal(small, "\xc3\xa9\xc3\xa9\xc3\xa9");
  assert_int_equal(cr_redact_into(r, "topsecret99", 0, small, sizeof small), 0);
  assert_null(strstr(small, "topsec"));
  assert_int_equal(cr_redact_into(r, NULL, 0, buf, sizeof buf), CR_EINVAL);
  assert_int_equal(cr_redact_into(r, "x", 0, NULL, 4), CR_EINVAL);
  cr_redactor_free(r);
}

static void test_name_rules(void **state) {
  (void)state;
  const char *yes[] = {"Authorization", "proxy-authorization", "Cookie",
                       "SET-COOKIE",    "X-Api-Key",           "Api-Key",
                       "X-Auth-Token",  "X-Client-Secret",     "my_key",
                       "password",      "access_token",        "sig",
                       "code",          "X-Session-Id"};
  const char *no[] = {"Content-Type", "Accept",  "page",     "Host",
                      "User-Agent",   "X-Count", "signed_at"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    assert_true(cr_redact_name_is_sensitive(yes[i], strlen(yes[i])));
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    assert_false(cr_redact_name_is_sensitive(no[i], strlen(no[i])));
  assert_false(cr_redact_name_is_sensitive(NULL, 0));
}

static void test_header_lines(void **state) {
  (void)state;
  const char *s[] = {"leakedvalue42", NULL};
  cr_redactor *r = make(s);
  char *out = NULL;
  assert_int_equal(
      cr_redact_header_line(r, "Authorization: Bearer abc.def", &out), 0);
  assert_string_equal(out, "Authorization: " MARK);
  cr__free(out);
  assert_int_equal(cr_redact_header_line(r, "X-Api-Key: k\r\n", &out), 0);
  assert_string_equal(out, "X-Api-Key: " MARK "\r\n");
  cr__free(out);
  assert_int_equal(
      cr_redact_header_line(r, "Content-Type: application/json", &out), 0);
  assert_string_equal(out, "Content-Type: application/json");
  cr__free(out);
  /* Known secrets are also hidden in innocent headers. */
  assert_int_equal(cr_redact_header_line(r, "X-Note: leakedvalue42", &out), 0);
  assert_string_equal(out, "X-Note: " MARK);
  cr__free(out);

  const char *block = "HTTP/1.1 200 OK\r\n"
                      "Set-Cookie: sid=123; HttpOnly\r\n"
                      "Content-Length: 2\r\n"
                      "X-Refresh-Token: zzz\r\n"
                      "\r\n";
  assert_int_equal(cr_redact_headers(r, block, &out), 0);
  assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                           "Set-Cookie: " MARK "\r\n"
                           "Content-Length: 2\r\n"
                           "X-Refresh-Token: " MARK "\r\n"
                           "\r\n");
  cr__free(out);
  assert_int_equal(cr_redact_headers(r, NULL, &out), CR_EINVAL);
  cr_redactor_free(r);
}

static void test_urls(void **state) {
  (void)state;
  const char *s[] = {"pathsecret77", NULL};
  cr_redactor *r = make(s);
  struct {
    const char *in, *want;
  } cases[] = {
      {"https://user:pw@host.example/p?api_key=abc&page=2&token=xyz#frag",
       "https://" MARK "@host.example/p?api_key=" MARK "&page=2&token=" MARK
       "#frag"},
      {"https://api.sendgrid.com/v3/scopes",
       "https://api.sendgrid.com/v3/scopes"},
      {"http://h/a/pathsecret77/b?x=1", "http://h/a/" MARK "/b?x=1"},
      {"http://h/?", "http://h/?"},
      {"http://h/?flag&key=1&", "http://h/?flag&key=" MARK "&"},
      {"/relative?client_secret=s", "/relative?client_secret=" MARK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = NULL;
    assert_int_equal(cr_redact_url(r, cases[i].in, &out), 0);
    assert_string_equal(out, cases[i].want);
    cr__free(out);
  }
  cr_redactor_free(r);
}

/* Every call below fails cleanly for each injected allocation failure and
 * eventually succeeds with the right result. */
static void test_alloc_failures(void **state) {
  (void)state;
  cr_test_alloc_install();
  int done = 0;
  for (long n = 0; !done; n++) {
    cr_test_alloc_fail_after(n);
    cr_redactor *r = NULL;
    int rc = cr_redactor_new(&r);
    if (rc != 0) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_null(r);
      continue;
    }
    rc = cr_redactor_add(r, "alloc-secret-1");
    if (rc != 0) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_int_equal(cr_redactor_count(r), 0);
      cr_redactor_free(r);
      continue;
    }
    rc = cr_redactor_add(r, "second/secret");
    if (rc != 0) {
      /* The failed add left the redactor as it was, and it still works. */
      assert_int_equal(rc, CR_ENOMEM);
      assert_int_equal(cr_redactor_count(r), 1);
      cr_test_alloc_fail_after(-1);
      char *out = NULL;
      assert_int_equal(cr_redact(r, "x alloc-secret-1 second/secret", &out), 0);
      assert_string_equal(out, "x " MARK " second/secret");
      cr__free(out);
      cr_redactor_free(r);
      continue;
    }
    char *a = NULL, *b = NULL, *c = NULL;
    char buf[64];
    int ra = cr_redact(r, "a alloc-secret-1 b", &a);
    int rb =
        cr_redact_headers(r, "Authorization: x\r\nX: second/secret\r\n", &b);
    int rcu = cr_redact_url(r, "http://u:p@h/second%2Fsecret?token=1", &c);
    int ri = cr_redact_into(r, "alloc-secret-1", 0, buf, sizeof buf);
    int failed = cr_test_alloc_failed();
    assert_true(ra == 0 || ra == CR_ENOMEM);
    assert_true(rb == 0 || rb == CR_ENOMEM);
    assert_true(rcu == 0 || rcu == CR_ENOMEM);
    assert_true(ri == 0 || ri == CR_ENOMEM);
    assert_null(strstr(buf, "alloc-secret"));
    if (!failed) {
      assert_string_equal(a, "a " MARK " b");
      assert_string_equal(b, "Authorization: " MARK "\r\nX: " MARK "\r\n");
      assert_string_equal(c, "http://" MARK "@h/" MARK "?token=" MARK);
      assert_string_equal(buf, MARK);
      done = 1;
    }
    cr__free(a);
    cr__free(b);
    cr__free(c);
    cr_redactor_free(r);
  }
  cr_test_alloc_fail_after(-1);
}

struct race {
  cr_redactor *r;
  int bad;
};

static void *reader(void *arg) {
  struct race *x = arg;
  for (int i = 0; i < 2000; i++) {
    char *out = NULL;
    if (cr_redact(x->r, "k=racesecret000 v", &out) != 0 ||
        strcmp(out, "k=" MARK " v") != 0)
      x->bad = 1;
    cr__free(out);
  }
  return NULL;
}

static void test_concurrent_reads_while_adding(void **state) {
  (void)state;
  const char *s[] = {"racesecret000", NULL};
  struct race x = {make(s), 0};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, reader, &x), 0);
  for (int i = 0; i < 200; i++) {
    char sec[32];
    snprintf(sec, sizeof sec, "added-secret-%03d", i);
    assert_int_equal(cr_redactor_add(x.r, sec), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_false(x.bad);
  assert_int_equal(cr_redactor_count(x.r), 201);
  assert_redacts(x.r, "added-secret-123", MARK);
  cr_redactor_free(x.r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),
      cmocka_unit_test(test_null_redactor_copies),
      cmocka_unit_test(test_url_encoded_forms),
      cmocka_unit_test(test_json_escaped_form),
      cmocka_unit_test(test_base64_forms),
      cmocka_unit_test(test_short_secrets_are_stored_not_matched),
      cmocka_unit_test(test_add_rules),
      cmocka_unit_test(test_overlapping_and_nested),
      cmocka_unit_test(test_tail_flag),
      cmocka_unit_test(test_redact_into),
      cmocka_unit_test(test_name_rules),
      cmocka_unit_test(test_header_lines),
      cmocka_unit_test(test_urls),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_concurrent_reads_while_adding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
