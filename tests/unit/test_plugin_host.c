/* test_plugin_host.c: the plugin loader: directory scans, every refusal
 * reason, file/directory permission checks, descriptor import (forward
 * compatibility), accessors, and the example plugin called through its
 * descriptor. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "plugin/plugin_host_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Helpers ---- */

#define MAX_REFUSALS 64

struct refusals {
  size_t n;
  char *path[MAX_REFUSALS];
  char *reason[MAX_REFUSALS];
};

static void on_refused(void *ud, const char *path, const char *reason) {
  struct refusals *r = ud;
  assert_true(r->n < MAX_REFUSALS);
  assert_null(strchr(reason, '\n')); /* one line */
  r->path[r->n] = strdup(path);
  r->reason[r->n] = strdup(reason);
  r->n++;
}

static void refusals_clear(struct refusals *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->path[i]);
    free(r->reason[i]);
  }
  r->n = 0;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* The reason given for file base (asserting it was refused exactly once). */
static const char *reason_for(const struct refusals *r, const char *base) {
  const char *found = NULL;
  for (size_t i = 0; i < r->n; i++) {
    if (strcmp(base_name(r->path[i]), base) != 0)
      continue;
    if (found != NULL)
      fail_msg("%s refused twice", base);
    found = r->reason[i];
  }
  if (found == NULL)
    fail_msg("%s was not refused", base);
  return found;
}

static void assert_contains(const char *hay, const char *needle) {
  if (hay == NULL || strstr(hay, needle) == NULL)
    fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

/* Copies a binary file; returns the new path (caller frees). */
static char *copy_file(const char *src, const char *dir, const char *name,
                       mode_t mode) {
  char *dst = cr_test_join(dir, name);
  cr_test_copy_file(src, dst);
  assert_int_equal(chmod(dst, mode), 0);
  return dst;
}

static cr_plugin_host *new_host(void) {
  cr_plugin_host *h = NULL;
  assert_int_equal(cr_plugin_host_new(NULL, &h), 0);
  assert_non_null(h);
  return h;
}

/* Loads CR_TEST_PLUGIN_DIR/base into h; returns the error code. */
static int load_test_plugin(cr_plugin_host *h, const char *base, char *err,
                            size_t errlen) {
  char *path = cr_test_join(CR_TEST_PLUGIN_DIR, base);
  int rc = cr_plugin_host_load_file(h, path, err, errlen);
  free(path);
  return rc;
}

/* ---- Directory scan ---- */

static void test_load_dir_good_and_bad(void **state) {
  (void)state;
  cr_plugin_host *h = new_host();
  struct refusals r = {0};
  assert_int_equal(
      cr_plugin_host_load_dir(h, CR_TEST_PLUGIN_DIR, on_refused, &r), 0);

  char want[256];
  snprintf(want, sizeof want,
           "wrong magic 0xdeadbeef (expected 0x%08x): not a connrun plugin or "
           "a corrupt build",
           (unsigned)CR_PLUGIN_MAGIC);
  assert_string_equal(reason_for(&r, "wrong_magic.so"), want);
  snprintf(want, sizeof want,
           "built for ABI 0.9; this host speaks ABI %d.x (major versions must "
           "match)",
           CR_PLUGIN_ABI_MAJOR);
  assert_string_equal(reason_for(&r, "abi_old_major.so"), want);
  snprintf(want, sizeof want, "built for ABI %d.0;", CR_PLUGIN_ABI_MAJOR + 1);
  assert_contains(reason_for(&r, "abi_future_major.so"), want);
  snprintf(want, sizeof want,
           "needs ABI %d.%d but this host provides %d.%d; upgrade connrun",
           CR_PLUGIN_ABI_MAJOR, CR_PLUGIN_ABI_MINOR + 1, CR_PLUGIN_ABI_MAJOR,
           CR_PLUGIN_ABI_MINOR);
  assert_string_equal(reason_for(&r, "abi_future_minor.so"), want);
  snprintf(want, sizeof want,
           "descriptor too small (%zu bytes, ABI 1.0 needs at least %zu)",
           offsetof(struct cr_plugin_descriptor, capabilities),
           (size_t)CR__PLUGIN_DESC_V1_0_SIZE);
  assert_string_equal(reason_for(&r, "too_small.so"), want);
  assert_string_equal(
      reason_for(&r, "missing_callback.so"),
      "missing required callback 'read' (capability read declared)");
  assert_string_equal(reason_for(&r, "no_entry.so"),
                      "not a connrun plugin (no connrun_plugin_entry symbol)");
  assert_string_equal(reason_for(&r, "null_descriptor.so"),
                      "entry function returned no descriptor");
  const char *undef = reason_for(&r, "undefined_symbol.so");
  assert_true(strncmp(undef, "cannot load: ", 13) == 0);
  assert_contains(undef, "undefined symbol: cr_tp_symbol_nobody_defines");
  assert_contains(reason_for(&r, "bad_schema.so"),
                  "invalid credentials_schema: ");
  assert_string_equal(reason_for(&r, "bad_streams.so"),
                      "invalid streams_json: not a JSON array");
  assert_string_equal(reason_for(&r, "no_auth_methods.so"),
                      "missing required field 'auth_methods'");
  assert_string_equal(reason_for(&r, "no_create.so"),
                      "missing required callback 'create'");
  assert_string_equal(reason_for(&r, "bad_name.so"),
                      "invalid name 'Bad Name' (must match [a-z0-9_-]{1,64})");

  /* dup_alpha.so < good_alpha.so: the first loaded keeps the name. */
  char *dup_path = cr_test_join(CR_TEST_PLUGIN_DIR, "dup_alpha.so");
  snprintf(want, sizeof want,
           "duplicate provider 'alpha' (already loaded from %s)", dup_path);
  assert_string_equal(reason_for(&r, "good_alpha.so"), want);
  const cr_plugin *alpha = cr_plugin_host_find(h, "alpha");
  assert_non_null(alpha);
  assert_string_equal(cr_plugin_path(alpha), dup_path);
  assert_string_equal(cr_plugin_desc(alpha)->version, "9.9.9-dup");
  free(dup_path);

  /* One bad plugin never stops the others. */
  assert_non_null(cr_plugin_host_find(h, "beta"));
  const cr_plugin *old = cr_plugin_host_find(h, "oldminor");
  assert_non_null(old);
  assert_int_equal(cr_plugin_desc(old)->struct_size, CR__PLUGIN_DESC_V1_0_SIZE);
  assert_null(cr_plugin_host_find(h, "wrong-magic"));
  assert_null(cr_plugin_host_find(h, "abi-future-minor"));

  /* Every loaded plugin came from the directory and was not also refused. */
  size_t n = cr_plugin_host_count(h);
  assert_true(n >= 3);
  for (size_t i = 0; i < n; i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    assert_non_null(p);
    assert_true(strncmp(cr_plugin_path(p), CR_TEST_PLUGIN_DIR,
                        strlen(CR_TEST_PLUGIN_DIR)) == 0);
    for (size_t j = 0; j < r.n; j++)
      assert_string_not_equal(r.path[j], cr_plugin_path(p));
  }
  assert_null(cr_plugin_host_at(h, n));
  /* Load order is file-name order. */
  for (size_t i = 1; i < n; i++)
    assert_true(strcmp(cr_plugin_path(cr_plugin_host_at(h, i - 1)),
                       cr_plugin_path(cr_plugin_host_at(h, i))) < 0);
  refusals_clear(&r);
  cr_plugin_host_free(h);
}

static void test_load_dir_errors(void **state) {
  (void)state;
  cr_plugin_host *h = new_host();
  struct refusals r = {0};
  assert_int_equal(cr_plugin_host_load_dir(h, "/nonexistent/connrun-plugins",
                                           on_refused, &r),
                   CR_ENOENT);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.path[0], "/nonexistent/connrun-plugins");
  assert_contains(r.reason[0], "cannot open plugin directory");
  refusals_clear(&r);

  /* Only regular *.so files are candidates; others are skipped silently. */
  char *dir = cr_test_mkdtemp("ph-skip");
  char *sub = cr_test_join(dir, "subdir.so");
  assert_int_equal(mkdir(sub, 0755), 0);
  free(cr_test_write_file(dir, "notes.txt", "not a plugin"));
  free(cr_test_write_file(dir, ".hidden.so", "not a plugin"));
  char *src = cr_test_join(CR_TEST_PLUGIN_DIR, "good_beta.so");
  free(copy_file(src, dir, "beta.so", 0644));
  free(cr_test_write_file(dir, "garbage.so", "not an ELF file"));
  assert_int_equal(chmod(dir, 0755), 0);
  assert_int_equal(cr_plugin_host_load_dir(h, dir, NULL, NULL), 0);
  assert_int_equal(cr_plugin_host_count(h), 1);
  cr_plugin_host_free(h);

  h = new_host();
  assert_int_equal(cr_plugin_host_load_dir(h, dir, on_refused, &r), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(base_name(r.path[0]), "garbage.so");
  assert_contains(r.reason[0], "cannot load: ");
  refusals_clear(&r);
  assert_int_equal(cr_plugin_host_load_dir(NULL, dir, NULL, NULL), CR_EINVAL);
  cr_plugin_host_free(h);

  cr_test_rmtree(dir);
  free(src);
  free(sub);
  free(dir);
}

/* ---- load_file ---- */

static void test_load_file_codes(void **state) {
  (void)state;
  static const struct {
    const char *file;
    int rc;
  } cases[] = {
      {"wrong_magic.so", CR_EPLUGIN},      {"abi_old_major.so", CR_EABI},
      {"abi_future_major.so", CR_EABI},    {"abi_future_minor.so", CR_EABI},
      {"too_small.so", CR_EABI},           {"missing_callback.so", CR_EPLUGIN},
      {"no_entry.so", CR_EPLUGIN},         {"null_descriptor.so", CR_EPLUGIN},
      {"undefined_symbol.so", CR_EPLUGIN}, {"bad_schema.so", CR_EPLUGIN},
      {"bad_streams.so", CR_EPLUGIN},      {"bad_name.so", CR_EPLUGIN},
      {"no_auth_methods.so", CR_EPLUGIN},  {"no_create.so", CR_EPLUGIN},
      {"no_such_plugin.so", CR_ENOENT},
  };
  cr_plugin_host *h = new_host();
  char err[1024];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = 'x';
    int rc = load_test_plugin(h, cases[i].file, err, sizeof err);
    if (rc != cases[i].rc)
      fail_msg("%s: got %s (%s)", cases[i].file, cr_err_name(rc), err);
    assert_true(err[0] != '\0' && err[0] != 'x');
    /* No errbuf, and a tiny one, are both fine. */
    assert_int_equal(load_test_plugin(h, cases[i].file, NULL, 0), cases[i].rc);
    char tiny[6];
    assert_int_equal(load_test_plugin(h, cases[i].file, tiny, sizeof tiny),
                     cases[i].rc);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
  }
  assert_int_equal(cr_plugin_host_count(h), 0);
  assert_int_equal(load_test_plugin(h, "no_such_plugin.so", err, sizeof err),
                   CR_ENOENT);
  assert_contains(err, "cannot stat: ");

  /* Loading the same file twice is a duplicate; the first stays usable. */
  assert_int_equal(load_test_plugin(h, "good_beta.so", err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_int_equal(load_test_plugin(h, "good_beta.so", err, sizeof err),
                   CR_EEXIST);
  assert_contains(err, "duplicate provider 'beta' (already loaded from ");
  assert_int_equal(cr_plugin_host_count(h), 1);

  /* A directory is not a plugin. */
  assert_int_equal(
      cr_plugin_host_load_file(h, CR_TEST_PLUGIN_DIR, err, sizeof err),
      CR_EPLUGIN);
  assert_string_equal(err, "not a regular file");
  assert_int_equal(cr_plugin_host_load_file(NULL, "x.so", err, sizeof err),
                   CR_EINVAL);
  assert_int_equal(cr_plugin_host_load_file(h, NULL, err, sizeof err),
                   CR_EINVAL);
  cr_plugin_host_free(h);
}

static void test_accessors(void **state) {
  (void)state;
  cr_plugin_host *h = new_host();
  char err[512];
  assert_int_equal(load_test_plugin(h, "good_alpha.so", err, sizeof err), 0);
  assert_int_equal(load_test_plugin(h, "good_beta.so", err, sizeof err), 0);
  assert_int_equal(cr_plugin_host_count(h), 2);

  const cr_plugin *a = cr_plugin_host_find(h, "alpha");
  const cr_plugin *b = cr_plugin_host_find(h, "beta");
  assert_ptr_equal(cr_plugin_host_at(h, 0), a);
  assert_ptr_equal(cr_plugin_host_at(h, 1), b);
  assert_null(cr_plugin_host_at(h, 2));
  assert_null(cr_plugin_host_find(h, "gamma"));
  assert_null(cr_plugin_host_find(h, NULL));
  assert_null(cr_plugin_host_find(NULL, "alpha"));
  assert_int_equal(cr_plugin_host_count(NULL), 0);

  const struct cr_plugin_descriptor *d = cr_plugin_desc(a);
  assert_string_equal(d->name, "alpha");
  assert_string_equal(d->display_name, "Alpha");
  assert_string_equal(d->version, "1.0.0");
  assert_int_equal(d->struct_size, sizeof(struct cr_plugin_descriptor));
  assert_non_null(d->health_check);
  assert_null(d->write);
  assert_contains(cr_plugin_path(a), "good_alpha.so");

  assert_true(cr_plugin_accepts_method(a, "api_key"));
  assert_true(cr_plugin_accepts_method(a, "oauth2"));
  assert_false(cr_plugin_accepts_method(a, "none"));
  assert_false(cr_plugin_accepts_method(a, NULL));
  assert_true(cr_plugin_accepts_method(b, "none"));
  assert_false(cr_plugin_accepts_method(b, "api_key"));

  /* alpha declares both schemas; beta none ("any object"). */
  const cr_schema *cs = cr_plugin_credentials_schema(a);
  assert_non_null(cs);
  assert_non_null(cr_plugin_config_schema(a));
  assert_ptr_not_equal(cs, cr_plugin_config_schema(a));
  json_t *empty = json_object();
  json_t *keyed = json_pack("{s:s}", "api_key", "k");
  assert_int_equal(cr_schema_validate(cs, empty, NULL, NULL), CR_ESCHEMA);
  assert_int_equal(cr_schema_validate(cs, keyed, NULL, NULL), 0);
  json_decref(empty);
  json_decref(keyed);
  assert_null(cr_plugin_credentials_schema(b));
  assert_null(cr_plugin_config_schema(b));

  char buf[64];
  assert_string_equal(cr_plugin_caps_string(a, buf, sizeof buf),
                      "health_check,read");
  assert_string_equal(cr_plugin_caps_string(b, buf, sizeof buf), "write");
  assert_string_equal(cr_plugin_caps_string(NULL, buf, sizeof buf), "-");
  char small[5];
  assert_ptr_equal(cr_plugin_caps_string(a, small, sizeof small), small);
  assert_string_equal(small, "heal");

  assert_null(cr_plugin_desc(NULL));
  assert_null(cr_plugin_path(NULL));
  assert_int_equal(cr_plugin_host_new(NULL, NULL), CR_EINVAL);
  cr_plugin_host_free(NULL);
  cr_plugin_host_free(h);
}

/* The entry function receives the host table given to cr_plugin_host_new. */
static void test_custom_api_reaches_plugin(void **state) {
  (void)state;
  struct cr_host_api api = *cr_host_api_default();
  cr_plugin_host *h = NULL;
  assert_int_equal(cr_plugin_host_new(&api, &h), 0);
  char err[512];
  assert_int_equal(load_test_plugin(h, "good_alpha.so", err, sizeof err), 0);
  const struct cr_plugin_descriptor *d =
      cr_plugin_desc(cr_plugin_host_find(h, "alpha"));
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .auth_method = "api_key",
                                    .credentials_json =
                                        "{\"api_key\":\"secret\"}"};
  void *inst = NULL;
  assert_int_equal(d->create(&api, &params, &inst, err, sizeof err), 0);
  char reason[64] = "";
  struct cr_plugin_health_result res = {
      .struct_size = sizeof res, .reason = reason, .reason_len = sizeof reason};
  assert_int_equal(d->health_check(inst, NULL, &res), 0);
  assert_int_equal(res.status, CR_PLUGIN_HEALTH_HEALTHY);
  assert_string_equal(reason, "alpha ok");
  d->destroy(inst);
  cr_plugin_host_free(h);
}

/* ---- Permissions ---- */

static void test_writable_file_and_dir_refused(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("ph-perm");
  assert_int_equal(chmod(dir, 0755), 0);
  char *src = cr_test_join(CR_TEST_PLUGIN_DIR, "good_beta.so");
  char *so = copy_file(src, dir, "beta.so", 0666);
  char err[1024];
  cr_plugin_host *h = new_host();

  assert_int_equal(cr_plugin_host_load_file(h, so, err, sizeof err), CR_EPERM);
  assert_string_equal(
      err, "file is writable by group or others (mode 0666); refusing to load");
  assert_int_equal(chmod(so, 0664), 0);
  assert_int_equal(cr_plugin_host_load_file(h, so, err, sizeof err), CR_EPERM);
  assert_string_equal(
      err, "file is writable by group or others (mode 0664); refusing to load");
  assert_int_equal(cr_plugin_host_count(h), 0);

  assert_int_equal(chmod(so, 0644), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  assert_int_equal(cr_plugin_host_load_file(h, so, err, sizeof err), CR_EPERM);
  char want[2048];
  snprintf(want, sizeof want,
           "directory %s is writable by group or others (mode 0777); refusing "
           "to load",
           dir);
  assert_string_equal(err, want);
  /* load_dir reports the same reason through the callback and goes on. */
  struct refusals r = {0};
  assert_int_equal(cr_plugin_host_load_dir(h, dir, on_refused, &r), 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.path[0], so);
  assert_string_equal(r.reason[0], want);
  refusals_clear(&r);
  assert_int_equal(cr_plugin_host_count(h), 0);

  /* A symlink from a safe directory into an unsafe one is refused too. */
  char *safe = cr_test_mkdtemp("ph-safe");
  assert_int_equal(chmod(safe, 0755), 0);
  char *link = cr_test_join(safe, "beta.so");
  assert_int_equal(symlink(so, link), 0);
  assert_int_equal(cr_plugin_host_load_file(h, link, err, sizeof err),
                   CR_EPERM);
  assert_string_equal(err, want);

  /* Fixed permissions: loads, through the link as well. */
  assert_int_equal(chmod(dir, 0755), 0);
  assert_int_equal(cr_plugin_host_load_file(h, link, err, sizeof err), 0);
  assert_int_equal(cr_plugin_host_count(h), 1);
  assert_string_equal(cr_plugin_path(cr_plugin_host_at(h, 0)), link);
  cr_plugin_host_free(h);

  cr_test_rmtree(safe);
  cr_test_rmtree(dir);
  free(link);
  free(safe);
  free(so);
  free(src);
  free(dir);
}

/* ---- Descriptor import (forward compatibility) ---- */

static int fake_create(const struct cr_host_api *api,
                       const struct cr_plugin_params *params, void **out,
                       char *errbuf, size_t errlen) {
  (void)api;
  (void)params;
  (void)errbuf;
  (void)errlen;
  *out = NULL;
  return 0;
}

/* A descriptor followed by junk, as a plugin with a different struct size
 * would have in memory. */
struct padded_desc {
  struct cr_plugin_descriptor d;
  unsigned char junk[64];
};

static void fill_padded(struct padded_desc *p, uint32_t struct_size) {
  memset(p, 0xab, sizeof *p);
  p->d.magic = CR_PLUGIN_MAGIC;
  p->d.abi_major = CR_PLUGIN_ABI_MAJOR;
  p->d.abi_minor = 0;
  p->d.struct_size = struct_size;
  p->d.name = "padded";
  p->d.create = fake_create;
}

static void test_desc_import_zero_fills(void **state) {
  (void)state;
  struct padded_desc src;
  struct cr_plugin_descriptor dst;
  char err[256];

  /* A plugin of an (imagined) older minor whose descriptor ended before
   * `read`: everything from `read` on reads as NULL, not as junk. */
  size_t old_size = offsetof(struct cr_plugin_descriptor, read);
  fill_padded(&src, (uint32_t)old_size);
  memset(&dst, 0x5a, sizeof dst);
  assert_int_equal(
      cr__plugin_desc_import(&src.d, old_size, &dst, err, sizeof err), 0);
  assert_string_equal(dst.name, "padded");
  assert_ptr_equal(dst.create, fake_create);
  assert_int_equal(dst.struct_size, old_size);
  assert_null(dst.read);
  assert_null(dst.write);
  const unsigned char *bytes = (const unsigned char *)&dst;
  for (size_t i = old_size; i < sizeof dst; i++)
    assert_int_equal(bytes[i], 0);

  /* A larger descriptor (a newer plugin with the same minor cannot exist,
   * but a bigger struct_size must never make the host read past its own
   * struct). */
  fill_padded(&src, (uint32_t)sizeof src);
  assert_int_equal(cr__plugin_desc_import(&src.d, CR__PLUGIN_DESC_V1_0_SIZE,
                                          &dst, err, sizeof err),
                   0);
  assert_memory_equal(&dst, &src.d, sizeof dst);

  /* Smaller than the minimum: refused with both sizes. */
  fill_padded(&src, (uint32_t)old_size);
  assert_int_equal(cr__plugin_desc_import(&src.d, CR__PLUGIN_DESC_V1_0_SIZE,
                                          &dst, err, sizeof err),
                   CR_EABI);
  char want[128];
  snprintf(want, sizeof want,
           "descriptor too small (%zu bytes, ABI 1.0 needs at least %zu)",
           old_size, (size_t)CR__PLUGIN_DESC_V1_0_SIZE);
  assert_string_equal(err, want);

  /* The header checks run first and leave dst alone. */
  fill_padded(&src, (uint32_t)sizeof src.d);
  src.d.abi_minor = CR_PLUGIN_ABI_MINOR + 3;
  memset(&dst, 0x5a, sizeof dst);
  assert_int_equal(cr__plugin_desc_import(&src.d, CR__PLUGIN_DESC_V1_0_SIZE,
                                          &dst, err, sizeof err),
                   CR_EABI);
  assert_contains(err, "upgrade connrun");
  assert_int_equal(bytes[0], 0x5a);
  src.d.magic = 0;
  assert_int_equal(
      cr__plugin_desc_import(&src.d, CR__PLUGIN_DESC_V1_0_SIZE, &dst, NULL, 0),
      CR_EPLUGIN);
}

/* ---- The example plugin ---- */

/* What the example emitted through the real host context's sinks. */
struct capture {
  int records;
  char first[128];
  char stream[32];
  char checkpoint[128];
  int checkpoints;
};

static int cap_emit(void *ud, const char *stream, const char *json,
                    size_t len) {
  struct capture *c = ud;
  if (c->records++ == 0)
    snprintf(c->first, sizeof c->first, "%.*s", (int)len, json);
  snprintf(c->stream, sizeof c->stream, "%s", stream);
  return 0;
}

static int cap_checkpoint(void *ud, const char *state_json) {
  struct capture *c = ud;
  c->checkpoints++;
  snprintf(c->checkpoint, sizeof c->checkpoint, "%s", state_json);
  return 0;
}

static const cr_plugin *load_example(cr_plugin_host *h) {
  char err[1024];
  int rc =
      cr_plugin_host_load_file(h, CR_PLUGIN_DIR "/example.so", err, sizeof err);
  if (rc != 0)
    fail_msg("example.so: %s", err);
  const cr_plugin *p = cr_plugin_host_find(h, "example");
  assert_non_null(p);
  return p;
}

static int example_health(const struct cr_plugin_descriptor *d,
                          const char *creds, char *reason, size_t len) {
  const struct cr_host_api *api = cr_host_api_default();
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .authorization_id = "auth-1",
                                    .auth_method = "api_key",
                                    .credentials_json = creds};
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(d->create(api, &params, &inst, err, sizeof err), 0);
  struct cr_plugin_health_result res = {
      .struct_size = sizeof res, .reason = reason, .reason_len = len};
  memset(reason, 0, len);
  cr_plugin_ctx ctx;
  assert_int_equal(cr_plugin_ctx_init(&ctx, "auth-1", NULL), 0);
  assert_int_equal(d->health_check(inst, &ctx, &res), 0);
  cr_plugin_ctx_cleanup(&ctx);
  d->destroy(inst);
  return res.status;
}

static void test_example_plugin_health(void **state) {
  (void)state;
  cr_plugin_host *h = new_host();
  const cr_plugin *p = load_example(h);
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  assert_string_equal(d->display_name, "Example provider");
  assert_true(cr_plugin_accepts_method(p, "api_key"));
  assert_true(cr_plugin_accepts_method(p, "none"));
  assert_false(cr_plugin_accepts_method(p, "oauth2"));
  /* api_key is optional but never empty; count is a non-negative integer. */
  static const struct {
    const char *json;
    int creds_rc, config_rc;
  } docs[] = {{"{}", 0, 0},
              {"{\"api_key\":\"k\"}", 0, CR_ESCHEMA},
              {"{\"api_key\":\"\"}", CR_ESCHEMA, CR_ESCHEMA},
              {"{\"count\":2,\"streams\":[\"items\"]}", CR_ESCHEMA, 0},
              {"{\"count\":-2}", CR_ESCHEMA, CR_ESCHEMA},
              {"{\"streams\":[1]}", CR_ESCHEMA, CR_ESCHEMA}};
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    json_t *j = json_loads(docs[i].json, 0, NULL);
    assert_non_null(j);
    assert_int_equal(
        cr_schema_validate(cr_plugin_credentials_schema(p), j, NULL, NULL),
        docs[i].creds_rc);
    assert_int_equal(
        cr_schema_validate(cr_plugin_config_schema(p), j, NULL, NULL),
        docs[i].config_rc);
    json_decref(j);
  }
  char caps[64];
  assert_string_equal(cr_plugin_caps_string(p, caps, sizeof caps),
                      "health_check,read");

  char reason[128];
  assert_int_equal(
      example_health(d, "{\"api_key\":\"good\"}", reason, sizeof reason),
      CR_PLUGIN_HEALTH_HEALTHY);
  assert_int_equal(
      example_health(d, "{\"api_key\":\"bad\"}", reason, sizeof reason),
      CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(reason, "api key rejected");
  assert_int_equal(example_health(d, "{}", reason, sizeof reason),
                   CR_PLUGIN_HEALTH_UNHEALTHY);
  cr_plugin_host_free(h);
}

static void example_read(const struct cr_plugin_descriptor *d,
                         const char *config, struct capture *c) {
  const struct cr_host_api *api = cr_host_api_default();
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .auth_method = "none",
                                    .credentials_json = "{}",
                                    .config_json = config,
                                    .work_id = "work-1"};
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(d->create(api, &params, &inst, err, sizeof err), 0);
  memset(c, 0, sizeof *c);
  struct cr_plugin_sinks sinks = {
      .ud = c, .emit = cap_emit, .checkpoint = cap_checkpoint};
  cr_plugin_ctx ctx;
  assert_int_equal(cr_plugin_ctx_init(&ctx, "auth-1", NULL), 0);
  cr_plugin_ctx_set_sinks(&ctx, &sinks);
  assert_int_equal(d->read(inst, &ctx), 0);
  cr_plugin_ctx_cleanup(&ctx);
  d->destroy(inst);
}

static void test_example_plugin_read(void **state) {
  (void)state;
  cr_plugin_host *h = new_host();
  const struct cr_plugin_descriptor *d = cr_plugin_desc(load_example(h));
  struct capture c;

  example_read(d, "{\"count\":5}", &c);
  assert_int_equal(c.records, 5);
  assert_string_equal(c.stream, "items");
  assert_string_equal(c.first, "{\"id\":1,\"name\":\"item 1\"}");
  assert_int_equal(c.checkpoints, 1);
  assert_string_equal(c.checkpoint, "{\"last_id\":5}");

  example_read(d, NULL, &c);
  assert_int_equal(c.records, 3);
  assert_string_equal(c.checkpoint, "{\"last_id\":3}");

  example_read(d, "{\"streams\":[\"other\"]}", &c);
  assert_int_equal(c.records, 0);
  assert_int_equal(c.checkpoints, 0);

  /* A bad config is a config error from create(). */
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .credentials_json = "{}",
                                    .config_json = "{\"count\":-1}"};
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err),
      CR_PLUGIN_ERR_CONFIG);
  assert_null(inst);
  assert_string_equal(err, "count must not be negative");
  cr_plugin_host_free(h);
}

/* ---- Allocation failures ---- */

/* Fails the Nth allocation for N = 0, 1, ... over a directory scan of a
 * fixed set of plugins (good ones with schemas and streams, and refused
 * ones): every failure is CR_ENOMEM with nothing leaked, and the first run
 * without a failure loads exactly what a normal run loads. */
static void test_alloc_failure_loop(void **state) {
  (void)state;
  static const char *const files[] = {"good_alpha.so", "good_beta.so",
                                      "dup_alpha.so", "bad_schema.so",
                                      "wrong_magic.so"};
  char *dir = cr_test_mkdtemp("ph-oom");
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *src = cr_test_join(CR_TEST_PLUGIN_DIR, files[i]);
    free(copy_file(src, dir, files[i], 0644));
    free(src);
  }
  free(copy_file(CR_PLUGIN_DIR "/example.so", dir, "example.so", 0644));

  cr_plugin_host *h = new_host();
  assert_int_equal(cr_plugin_host_load_dir(h, dir, NULL, NULL), 0);
  size_t want = cr_plugin_host_count(h);
  assert_int_equal(want, 3); /* alpha (dup_alpha.so), beta, example */
  cr_plugin_host_free(h);

  cr_test_alloc_install();
  for (long n = 0;; n++) {
    cr_test_alloc_fail_after(n);
    h = NULL;
    int rc = cr_plugin_host_new(NULL, &h);
    if (rc == 0)
      rc = cr_plugin_host_load_dir(h, dir, NULL, NULL);
    int failed = cr_test_alloc_failed();
    if (failed) {
      assert_int_equal(rc, CR_ENOMEM);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(cr_plugin_host_count(h), want);
    }
    cr_plugin_host_free(h);
    if (!failed)
      break;
    assert_true(n < 100000);
  }
  cr_test_alloc_fail_after(-1);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_dir_good_and_bad),
      cmocka_unit_test(test_load_dir_errors),
      cmocka_unit_test(test_load_file_codes),
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_custom_api_reaches_plugin),
      cmocka_unit_test(test_writable_file_and_dir_refused),
      cmocka_unit_test(test_desc_import_zero_fills),
      cmocka_unit_test(test_example_plugin_health),
      cmocka_unit_test(test_example_plugin_read),
      cmocka_unit_test(test_alloc_failure_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
