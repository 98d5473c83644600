/* cmd_subscriptions.c: `connrun subscriptions -c FILE`: every webhook
 * subscription with its state, backlog and delivery success rate; and
 * `connrun subscriptions replay SUB --since TIME -c FILE`: re-send past
 * events (same webhook-id) through the running daemon's outbox. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_client.h"
#include "cli_common.h"
#include "config/config.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun subscriptions -c FILE\n"
        "       connrun subscriptions replay SUB_ID --since DURATION -c FILE\n"
        "\n"
        "Without a command: every subscription with its state (enabled, or\n"
        "disabled with the reason), backlog (events waiting or retrying),\n"
        "delivered and dead counts, the success rate of the last 24 h of\n"
        "attempts and the last attempt.\n\n"
        "replay: queues again every event of the last DURATION (e.g. 24h)\n"
        "that the subscription's filter matches; the daemon re-sends them\n"
        "with their original webhook-id, so receivers can de-duplicate.\n\n"
        "examples:\n"
        "  connrun subscriptions -c configs/example.yaml\n"
        "  connrun subscriptions replay slack-failures --since 6h -c "
        "configs/example.yaml\n\n"
        "exit codes: 0 ok, 1 unknown subscription, 2 usage error, 3 store "
        "error\n",
        out);
}

static int list(cr_store *s) {
  struct cr_sub_rec *subs = NULL;
  size_t n = 0;
  int rc = cr_store_sub_list(s, &subs, &n);
  printf("%-24s %-9s %8s %10s %6s %9s  %-21s %s\n", "SUBSCRIPTION", "STATE",
         "BACKLOG", "DELIVERED", "DEAD", "OK (24h)", "LAST ATTEMPT", "LAST");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct cr_sub_stats st;
    memset(&st, 0, sizeof st);
    rc = cr_store_sub_stats(s, subs[i].id, &st);
    if (rc != 0)
      break;
    char rate[16], at[32], last[300];
    if (st.attempts_24h > 0)
      snprintf(rate, sizeof rate, "%.1f%%",
               100.0 * (double)st.ok_24h / (double)st.attempts_24h);
    else
      snprintf(rate, sizeof rate, "-");
    cr_cli_fmt_time(st.last_attempt_at, at, sizeof at);
    if (st.last_attempt_at == 0)
      snprintf(last, sizeof last, "-");
    else if (st.last_status > 0)
      snprintf(last, sizeof last, "HTTP %d", st.last_status);
    else
      snprintf(last, sizeof last, "%s", st.last_error ? st.last_error : "-");
    printf("%-24s %-9s %8" PRId64 " %10" PRId64 " %6" PRId64 " %9s  %-21s %s\n",
           subs[i].id, subs[i].enabled ? "enabled" : "disabled", st.backlog,
           st.delivered, st.dead, rate, at, last);
    if (!subs[i].enabled && subs[i].disabled_reason)
      printf("  disabled: %s\n", subs[i].disabled_reason);
    cr_sub_stats_clear(&st);
  }
  cr_sub_rec_free_list(subs, n);
  return rc;
}

static int replay(cr_store *s, const char *id, int64_t since_ms) {
  size_t n = 0;
  int rc = cr_store_outbox_replay(s, id, since_ms, &n);
  if (rc == 0)
    printf("subscription %s: %zu events queued again\n", id, n);
  else if (rc == CR_ENOENT)
    cr_cli_errorf("subscriptions replay: no subscription '%s' in the store",
                  id);
  return rc;
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

/* `subscriptions --server`: the same table, and replay, through the API. */
static int remote(const char *server, const char *sub, int64_t since) {
  if (sub != NULL) {
    char path[400];
    snprintf(path, sizeof path, "/v1/subscriptions/%s/replay", sub);
    json_t *body = json_pack("{s:I}", "since", (json_int_t)since), *out = NULL;
    long status = 0;
    int rc =
        cr_cli_call("subscriptions", server, "POST", path, body, &status, &out);
    json_decref(body);
    if (rc != 0)
      return CR_EXIT_RUNTIME;
    int ex = status == 200 ? CR_EXIT_OK
                           : cr_cli_api_error("subscriptions", status, out);
    if (ex == CR_EXIT_OK)
      printf("subscription %s: %lld events queued again\n", sub,
             (long long)json_integer_value(json_object_get(out, "queued")));
    json_decref(out);
    return ex;
  }
  json_t *items = NULL;
  int ex = cr_cli_get_all("subscriptions", server, "/v1/subscriptions", &items);
  if (ex != CR_EXIT_OK)
    return ex;
  printf("%-24s %-9s %8s %10s %6s %9s  %-24s %s\n", "SUBSCRIPTION", "STATE",
         "BACKLOG", "DELIVERED", "DEAD", "OK (24h)", "LAST ATTEMPT", "LAST");
  size_t i;
  const json_t *x;
  json_array_foreach(items, i, x) {
    char rate[16] = "-", last[300] = "-";
    const json_t *r = json_object_get(x, "success_rate_24h");
    if (json_is_number(r))
      snprintf(rate, sizeof rate, "%.1f%%", 100.0 * json_number_value(r));
    long long st = json_integer_value(json_object_get(x, "last_status"));
    if (st > 0)
      snprintf(last, sizeof last, "HTTP %lld", st);
    else if (json_is_string(json_object_get(x, "last_error")))
      snprintf(last, sizeof last, "%s", jstr(x, "last_error"));
    printf("%-24s %-9s %8lld %10lld %6lld %9s  %-24s %s\n", jstr(x, "id"),
           json_is_true(json_object_get(x, "enabled")) ? "enabled" : "disabled",
           (long long)json_integer_value(json_object_get(x, "backlog")),
           (long long)json_integer_value(json_object_get(x, "delivered")),
           (long long)json_integer_value(json_object_get(x, "dead")), rate,
           jstr(x, "last_attempt_at"), last);
  }
  json_decref(items);
  return CR_EXIT_OK;
}

int cr_cmd_subscriptions(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL, *sub = NULL, *server = NULL;
  int64_t since = -1;
  int is_replay = argc > 1 && strcmp(argv[1], "replay") == 0;
  for (int i = 1 + is_replay; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (!strcmp(argv[i], "--since") && i + 1 < argc &&
             cr_cli_parse_since(argv[i + 1], &since) == 0)
      i++;
    else if (is_replay && argv[i][0] != '-' && sub == NULL)
      sub = argv[i];
    else {
      cr_cli_errorf("subscriptions: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  server = cr_cli_server(server);
  if (file == NULL && server != NULL && (!is_replay || (sub && since >= 0)))
    return remote(server, is_replay ? sub : NULL, since);
  if (file == NULL || (is_replay && (sub == NULL || since < 0))) {
    cr_cli_errorf("subscriptions: need -c FILE%s (see --help)",
                  is_replay ? ", SUB_ID and --since DURATION" : "");
    return CR_EXIT_USAGE;
  }
  cr_store *s = NULL;
  int rc = cr_cli_store_open("subscriptions", file, &s, NULL);
  if (rc != CR_EXIT_OK)
    return rc;
  rc = is_replay ? replay(s, sub, since) : list(s);
  cr_store_close(s);
  if (rc == 0)
    return CR_EXIT_OK;
  return rc == CR_ENOENT ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
}
