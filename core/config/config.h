/* config.h: the connrun configuration: one YAML file (plus includes) loaded
 * into typed structs, with every problem reported as a located diagnostic.
 *
 * Loading checks everything that needs no plugin: shape and types of every
 * key (unknown keys get a "did you mean"), required fields, ids and their
 * uniqueness, references between sections, schedules, destinations,
 * subscriptions, secret references, includes. cr_config_check_plugins() then
 * checks what needs the loaded provider plugins: providers, methods, and the
 * credentials / work config against the plugins' JSON Schemas.
 *
 * Ownership: everything reachable from a cr_config (strings, arrays, json_t
 * values, the mark table) is owned by it and valid until cr_config_free.
 * json_t members are borrowed references: json_incref what you keep longer.
 *
 * Secrets: credentials, api token values, subscription header values and
 * secret, and alert passwords are resolved (${ENV}, file:) at load; the
 * resolved values live only in the fields documented as "resolved" and are
 * registered with the config's redactor. Diagnostics never contain them.
 *
 * config_hash: every authorization, work, subscription and alert carries an
 * FNV-1a 64 hash of its definition AS WRITTEN (canonical JSON: sorted keys,
 * compact), with secret references unresolved. A store compares hashes to
 * tell created / updated / unchanged without storing secrets. Consequence:
 * changing only the value of an environment variable (or of a secret file)
 * is not an "update" of the object.
 */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"
#include "config/yamljson.h"

/* Limits on the files read: each file at most CR_YAML_MAX_FILE_SIZE bytes
 * and CR_YAML_MAX_DEPTH levels of nesting (yamljson.h), and the top file
 * with all its includes at most CR_CONFIG_MAX_TOTAL_SIZE bytes; the include
 * that would pass it is refused at its include entry. */
#define CR_CONFIG_MAX_TOTAL_SIZE (32u << 20)

typedef struct cr_plugin_host cr_plugin_host;
typedef struct cr_schedule cr_schedule;
typedef struct cr_redactor cr_redactor;

/* Where provider code runs. */
enum cr_isolation {
  CR_ISOLATION_PROCESS = 0, /* a worker process per execution (default) */
  CR_ISOLATION_INLINE = 1,  /* in the daemon's own process */
};

/* Where a work's records go. */
enum cr_dest_type {
  CR_DEST_JSONL = 0,  /* JSON lines files under path (a directory) */
  CR_DEST_SQLITE = 1, /* a SQLite database file at path */
  CR_DEST_PLUGIN = 2, /* a provider plugin's write() */
};

/* How a work is scheduled. */
enum cr_schedule_kind {
  CR_SCHED_NONE = 0,  /* no schedule: runs only when triggered */
  CR_SCHED_EVERY = 1, /* fixed interval */
  CR_SCHED_CRON = 2,  /* cron expression in a time zone */
};

/* API token scopes (a bit set). */
enum cr_api_scope {
  CR_SCOPE_READ = 1,   /* every GET */
  CR_SCOPE_WRITE = 2,  /* changes to authorizations, works, subscriptions */
  CR_SCOPE_ADMIN = 4,  /* runners, rescans, deletes with force */
  CR_SCOPE_RUNNER = 8, /* remote runner calls */
};

struct cr_config_api_token {
  const char *name;
  char *token; /* resolved secret */
  int scopes;  /* enum cr_api_scope bits; default CR_SCOPE_READ */
};

/* The REST API server's limits (host.api). */
struct cr_config_api {
  int threads;              /* 1..64, default 2 */
  int max_connections;      /* 1..65536, default 1024 */
  int max_per_ip;           /* 0..65536, default 0 = no per-address limit */
  int64_t timeout_ms;       /* idle connection timeout, default 30 s */
  int max_body_bytes;       /* request body limit, default 1 MiB */
  char *tls_cert, *tls_key; /* host.tls: absolute PEM paths, or NULL */
  int allow_insecure_http;  /* host.allow_insecure_http */
  char *secret_key_file;    /* host.secret_key_file, absolute; default
                               <data_dir>/secret.key */
  /* host.api.rate_limit: requests per second and burst of each token (or
   * client address without one); 0 = no limit, the default. */
  int rate_per_s, rate_burst;
};

/* A registration token remote runners exchange for a runner id and a token
 * of their own (host.runner_registration_tokens). */
struct cr_config_runner_token {
  const char *name;
  char *token;         /* resolved secret */
  const char **labels; /* fixed labels every runner registered with it
                          gets (owned array, borrowed strings) */
  size_t n_labels;
};

struct cr_config_host {
  char *data_dir;     /* absolute; default <config dir>/data */
  char *store;        /* host.store: a resolved secret, postgresql://... or
                         sqlite:/abs/path.db; NULL: data_dir/connrun.db */
  char **plugin_dirs; /* absolute paths; may be empty; when the file names
                         none, the default directory if one is set */
  size_t n_plugin_dirs;
  const char *listen;     /* "HOST:PORT"; default "127.0.0.1:8470" */
  const char *account_id; /* "aid" in events; default "default" */
  struct cr_config_api_token *api_tokens;
  size_t n_api_tokens;
  int runner_concurrency; /* default 4 */
  int runner_isolation;   /* enum cr_isolation; default process */
  struct cr_config_runner_token *runner_tokens;
  size_t n_runner_tokens;
  int64_t runner_offline_after_ms;  /* host.runner.offline_after; 90 s */
  int64_t runner_lease_ms;          /* host.runner.lease (remote); 60 s */
  int64_t health_check_interval_ms; /* default 24h */
  int event_retention_days;         /* default 90 */
  struct cr_config_api api;         /* REST API settings */
  const json_t *def;                /* the host mapping, NULL if absent */
};

struct cr_config_auth {
  const char *id;
  const char *name; /* defaults to id */
  const char *description;
  const char *provider;
  const char *method;
  const char *owner;
  json_t *credentials;    /* resolved secrets, an object ({} when absent) */
  int unresolved;         /* a secret reference in credentials failed */
  const json_t *settings; /* non-secret settings as written, NULL if none */
  const json_t *def;      /* as written */
  /* After cr_config_compact the three trees above are NULL and these hold
   * them as compact JSON (owned): read through cr_config_auth_credentials*
   * and cr_config_settings_json, which serve both forms. */
  char *credentials_json; /* resolved secrets: wiped when freed */
  char *settings_json;    /* NULL when the authorization has no settings */
  uint64_t config_hash;
  struct cr_mark mark; /* start of the definition */
  /* Why its provider cannot serve it on a running daemon (owned; NULL when
   * it can): set by cr_config_check_plugins_ex(CR_CHECK_DEGRADE). */
  char *unavailable;
};

struct cr_config_schedule {
  int kind;           /* enum cr_schedule_kind */
  const char *every;  /* CR_SCHED_EVERY: "1h" */
  const char *cron;   /* CR_SCHED_CRON: "0 3 * * *" */
  const char *tz;     /* CR_SCHED_CRON: time zone name, NULL = UTC */
  cr_schedule *sched; /* parsed (schedule.h), NULL when kind is NONE or bad */
  const json_t *def;
};

struct cr_config_destination {
  int type;                          /* enum cr_dest_type; default jsonl */
  char *path;                        /* jsonl/sqlite: absolute; default under
                                        data_dir/out/<work id> (.sqlite) */
  const char *provider;              /* plugin destination */
  const char *authorization;         /* plugin destination */
  const struct cr_config_auth *auth; /* resolved authorization or NULL */
  const json_t *def;
};

struct cr_config_work {
  const char *id;
  const char *name; /* defaults to id */
  const char *description;
  const char *provider;
  const char *authorization;
  const struct cr_config_auth *auth; /* resolved, NULL when unknown */
  struct cr_config_schedule schedule;
  struct cr_config_destination destination;
  json_t *config; /* provider config as written, an object ({} if absent) */
  int enabled;    /* default 1 */
  int error_email_notifications; /* default 0 */
  int max_attempts;              /* default 3 */
  int64_t timeout_ms;            /* default 1h */
  int isolation;                 /* enum cr_isolation; default: host's */
  int memory_limit_mb;           /* 0 = no limit (default) */
  const char **runner_labels;    /* runner: {labels: [...]}: only a remote
                                    runner holding all of them runs it (owned
                                    array, borrowed strings); NULL = none */
  size_t n_runner_labels;
  const json_t *def;
  /* After cr_config_compact, config, def, schedule.def and destination.def
   * are NULL and these hold them as compact JSON (owned): read through
   * cr_config_work_config_text and cr_config_work_def. */
  char *config_json;
  char *def_json;
  uint64_t config_hash;
  struct cr_mark mark;
  char *unavailable; /* as for authorizations (owned; NULL: runnable) */
};

struct cr_config_subscription {
  const char *id;
  const char *name;     /* defaults to id */
  const char *workflow; /* "webhook_system_events" or "table_system_events" */
  int enabled;          /* default 1 */
  const char **event_types; /* verbs; n_event_types == 0 means every verb */
  size_t n_event_types;
  const json_t *sources; /* {subject type: [ids]} ([] = all), NULL = all */
  const char *webhook_url;
  json_t *headers; /* resolved secrets; object of strings ({} if absent) */
  const char *json_template; /* NULL when absent */
  char *secret;              /* resolved secret or NULL */
  const json_t *config;      /* as written */
  /* delivery: settings (subscription level, next to config:) */
  int64_t timeout_ms;         /* default 15 s */
  int64_t *retry_schedule_ms; /* NULL: the Standard Webhooks schedule */
  size_t n_retry_schedule;    /* attempts, the first included */
  int max_in_flight;          /* default 16 */
  int64_t disable_after_ms;   /* default 5 days */
  /* delivery.batch (events/batch_delivery.h); batch 0: one POST per event */
  int batch;
  int batch_max_events;      /* default 1000, at most 10,000 */
  int64_t batch_max_bytes;   /* default 1 MiB */
  int batch_max_bytes_i;     /* (as parsed) */
  int64_t batch_max_wait_ms; /* default 1 s */
  int batch_ndjson;          /* format: ndjson (else a JSON array) */
  /* workflow table_system_events (export/export_engine.h) */
  char *export_to;          /* resolved destination URL (may hold a password) */
  const char *export_table; /* default "system_events" */
  int export_batch;         /* events per destination transaction; 5000 */
  int export_from_start;    /* from: start (else now) */
  const json_t *def;
  uint64_t config_hash;
  struct cr_mark mark;
};

/* An alert's channel (exactly one). */
enum cr_alert_channel {
  CR_ALERT_CHANNEL_NONE = 0, /* only in a config that failed to load */
  CR_ALERT_CHANNEL_EMAIL = 1,
  CR_ALERT_CHANNEL_WEBHOOK = 2,
};

/* Error-rate rule defaults. */
#define CR_ALERT_DEFAULT_THRESHOLD 30
#define CR_ALERT_DEFAULT_WINDOW_MS (INT64_C(24) * 3600 * 1000)
#define CR_ALERT_DEFAULT_MIN_EXECUTIONS 5
/* Most recipients of one e-mail channel. */
#define CR_ALERT_MAX_TO 50

/* An alert (alerts.h): a channel and its rules. */
struct cr_config_alert {
  const char *id;
  const char *name; /* defaults to id */
  int channel;      /* enum cr_alert_channel */
  /* channel.email */
  const char *email_url;      /* smtp:// or smtps:// */
  const char *email_username; /* NULL: no login */
  const char *email_password; /* resolved secret (inside resolved) or NULL */
  const char *email_from;
  const char **email_to; /* n_email_to addresses (1..CR_ALERT_MAX_TO) */
  size_t n_email_to;
  int email_starttls; /* CR_MAIL_STARTTLS_* (mail.h); default auto */
  /* channel.webhook */
  const char *webhook_url;
  json_t *webhook_headers;   /* resolved secrets; object ({} if absent) */
  const char *json_template; /* NULL: the event JSON is the body */
  /* rules */
  int is_default;     /* `default: true`: serves error_email_notifications */
  int has_error_rate; /* error_rate: given, or implied by default: true */
  int threshold_pct;  /* 1..100, default 30 */
  int64_t window_ms;  /* default 24h */
  int min_executions; /* default 5 */
  const char **works; /* error_rate.works (ids, checked), NULL/0: see
                         alerts.h for who is watched */
  size_t n_works;
  int has_events;           /* events: given */
  const char **event_types; /* verbs; n_event_types == 0: every verb */
  size_t n_event_types;
  const json_t *event_sources; /* {subject type: [ids]}, NULL = all */
  const json_t *def;           /* as written */
  json_t *resolved; /* copy of def with every "password" value resolved */
  uint64_t config_hash;
  struct cr_mark mark;
};

typedef struct cr_config {
  const char *path; /* the top file as given to cr_config_load */
  char *dir;        /* absolute directory of the top file */
  struct cr_config_host host;
  struct cr_config_auth *auths;
  size_t n_auths;
  struct cr_config_work *works;
  size_t n_works;
  struct cr_config_subscription *subscriptions;
  size_t n_subscriptions;
  struct cr_config_alert *alerts;
  size_t n_alerts;
  const char **files; /* every file read, top file first (interned) */
  size_t n_files;
  cr_marks *marks;              /* positions of every node of the definitions */
  struct cr__config_priv *priv; /* private */
} cr_config;

/* Sets the directory cr_config_load puts in host.plugin_dirs when a
 * configuration names none (the connrun tool sets its installed plugin
 * directory at start). dir is copied; NULL clears it. Not thread-safe: call
 * before any thread loads a configuration. Returns 0 or CR_ENOMEM (the
 * previous default is kept). */
int cr_config_set_default_plugin_dir(const char *dir);

/* Loads path (borrowed) and its includes, appending every problem to diags
 * (borrowed; the caller owns and frees it). Returns:
 *   0           no error diagnostics (warnings possible); *out is set;
 *   CR_ECONFIG  at least one error diagnostic; *out is still set to a
 *               best-effort config (invalid entries are kept but may miss
 *               fields: strings NULL, defaults in place) that can be given
 *               to cr_config_check_plugins to find more problems but must
 *               not be run;
 *   CR_ENOENT / CR_EIO  the top file cannot be read (also as a diagnostic);
 *               *out is NULL;
 *   CR_ENOMEM   *out is NULL (diagnostics may be incomplete).
 * Free *out with cr_config_free. */
int cr_config_load(const char *path, cr_config **out, cr_diags *diags);

/* cr_config_load, plus the objects created through the REST API: api_root
 * (borrowed, may be NULL) is {"authorizations": [...], "works": [...],
 * "subscriptions": [...]} in the configuration's own keys, with every
 * secret in place. They are applied after the files as the file "api"
 * (mark.file == "api": managed by the API); their strings are literals,
 * never ${ENV} or file: references, and credentials among them are
 * registered with the redactor. An id both in a file and in the API is a
 * duplicate-id error. */
int cr_config_load_ex(const char *path, const json_t *api_root, cr_config **out,
                      cr_diags *diags);

/* Checks cfg (borrowed) against the plugins loaded in h (borrowed): unknown
 * providers, methods a provider does not accept, works whose provider cannot
 * read, plugin destinations whose provider cannot write, credentials and work
 * config against the plugins' schemas (each error at the offending value).
 * Appends to diags. Returns 0 when it added no error, CR_ECONFIG when it
 * did, CR_ENOMEM. Schema messages are redacted of every known secret. */
int cr_config_check_plugins(const cr_config *cfg, const cr_plugin_host *h,
                            cr_diags *diags);

/* Flags of cr_config_check_plugins_ex. */
enum {
  /* A running daemon's reload: an object its provider cannot serve (the
   * provider is not loaded, or its schemas no longer accept the object) is
   * not an error but a warning, and the object keeps the reason in its
   * `unavailable` field ("provider 'x' is not loaded", or the schema
   * message); the rest of the configuration applies. A work whose
   * authorization is unavailable is unavailable too. */
  CR_CHECK_DEGRADE = 1
};

/* cr_config_check_plugins with flags (CR_CHECK_DEGRADE or 0). cfg is
 * borrowed; with CR_CHECK_DEGRADE its objects' `unavailable` fields are
 * set (owned by cfg). Returns as cr_config_check_plugins. */
int cr_config_check_plugins_ex(const cr_config *cfg, const cr_plugin_host *h,
                               cr_diags *diags, int flags);

/* Frees the positions of cfg's nodes, kept for FILE:LINE:COLUMN
 * diagnostics while loading and checking (a third of a large
 * configuration's memory). Diagnostics made on cfg afterwards have no
 * position; the objects' own `mark` fields stay. cfg is borrowed. */
void cr_config_drop_positions(cr_config *cfg);

/* Drops the JSON trees of cfg's authorizations and works (their
 * definitions as written, work configs, credentials and settings), keeping
 * each as compact JSON text, and copies the strings that pointed into them
 * into one pool owned by cfg: about 1.2 KiB less per object, for a daemon
 * that holds 10,000s of them. Also drops the positions
 * (cr_config_drop_positions). For a configuration that is loaded, checked
 * and applied, before it is shared with other threads: afterwards
 * cr_config_check_plugins has nothing to check, and the trees are read only
 * through the accessors below, which serve both forms. Compacting twice is
 * a no-op. Returns 0 or CR_ENOMEM (cfg then stays usable, partly
 * compacted). */
int cr_config_compact(cr_config *cfg);

/* The authorization's resolved credentials as compact JSON text ("{}" when
 * none): a new string the caller wipes (it is secret) and frees with
 * free(); NULL on ENOMEM. */
char *cr_config_auth_credentials_text(const struct cr_config_auth *a);

/* The authorization's resolved credentials as a new object the caller owns
 * (json_decref) and may change; NULL on ENOMEM. */
json_t *cr_config_auth_credentials(const struct cr_config_auth *a);

/* The authorization's settings as a new object the caller owns, NULL when
 * it has none (or on ENOMEM). */
json_t *cr_config_auth_settings(const struct cr_config_auth *a);

/* The work's provider config as compact JSON text ("{}" when absent): a new
 * string the caller frees with free(); NULL on ENOMEM. */
char *cr_config_work_config_text(const struct cr_config_work *w);

/* The work's definition as written, as a new object the caller owns
 * (json_decref) and may change; NULL on ENOMEM. */
json_t *cr_config_work_def(const struct cr_config_work *w);

/* Frees the config and everything it owns; resolved secrets are wiped
 * first. NULL is a no-op. */
void cr_config_free(cr_config *cfg);

/* The authorization's settings as a JSON object text ("{}" when none), a
 * new string the caller frees with free(); NULL on ENOMEM. */
char *cr_config_settings_json(const struct cr_config_auth *a);

/* Where the store is, for cr_store_open: host.store when set, else
 * host.data_dir (borrowed from cfg). */
const char *cr_config_store_at(const cr_config *cfg);

/* What to call the store in messages: host.data_dir, or "host.store" (its
 * URL may hold a password). Borrowed from cfg or static. */
const char *cr_config_store_label(const cr_config *cfg);

/* The first enabled work (in file order) that uses authorization auth_id
 * (borrowed), or NULL: the config a health check is given. O(log n). */
const struct cr_config_work *cr_config_first_work_of(const cr_config *cfg,
                                                     const char *auth_id);

/* Lookups by id (borrowed; NULL when absent). */
const struct cr_config_auth *cr_config_find_auth(const cr_config *cfg,
                                                 const char *id);
const struct cr_config_work *cr_config_find_work(const cr_config *cfg,
                                                 const char *id);
const struct cr_config_subscription *
cr_config_find_subscription(const cr_config *cfg, const char *id);

/* The redactor holding every resolved secret of cfg (borrowed; owned by
 * cfg). */
cr_redactor *cr_config_redactor(const cr_config *cfg);

/* FNV-1a 64 of json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT |
 * JSON_ENCODE_ANY) (computed without allocating the text). v borrowed. */
uint64_t cr_config_hash_json(const json_t *v);

/* Parses a duration: an integer number of seconds, or a string of one or
 * more <number><unit> with unit ms, s, m, h or d ("90s", "1h30m", "24h").
 * Returns 0 and *ms, or CR_EINVAL (also for negative, empty or overflowing
 * values). text borrowed. */
int cr_config_parse_duration(const char *text, int64_t *ms);

/* True when s (borrowed) is a valid id: [A-Za-z0-9_.-]{1,128}. */
int cr_config_valid_id(const char *s);

#endif
