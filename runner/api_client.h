/* api_client.h: the CLI against a running server (kubectl/gh style): the
 * server from --server URL or CONNRUN_SERVER, the token from CONNRUN_TOKEN
 * (never from the command line, so it stays out of shell history and ps),
 * one JSON request with libcurl, and the server's JSON error printed the
 * way local errors are. */
#ifndef CR_API_CLIENT_H
#define CR_API_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>

/* The server to use: server_flag (borrowed, may be NULL) or
 * $CONNRUN_SERVER; NULL when neither is set (work locally). */
const char *cr_cli_server(const char *server_flag);

/* server + path (server's trailing slashes dropped): a new malloc'd
 * string, NULL on ENOMEM. */
char *cr_cli_url(const char *server, const char *path);

/* Appends "Authorization: Bearer $CONNRUN_TOKEN" to h when the token is
 * set; *auth gets the header text (free it with cr_cli_auth_free, which
 * wipes it, after the transfer). Returns the list. */
struct curl_slist *cr_cli_auth_header(struct curl_slist *h, char **auth);
void cr_cli_auth_free(char *auth);

/* Sends METHOD path (borrowed, e.g. "/v1/works?limit=10") to server with
 * body (borrowed JSON, may be NULL). On an HTTP answer returns 0 with
 * *status and *out (the parsed body, a new reference, or NULL for none);
 * on a transport failure prints "connrun: <cmd>: ..." and returns -1. */
int cr_cli_call(const char *cmd, const char *server, const char *method,
                const char *path, const json_t *body, long *status,
                json_t **out);

/* Prints a server error body {"error": {"code", "message"}} (or the status
 * when there is none) as "connrun: <cmd>: message (code)" and returns the
 * exit code for status: 1 for 4xx (the input was refused), 3 otherwise. */
int cr_cli_api_error(const char *cmd, long status, const json_t *body);

/* GETs every page of a list (following "next") into one array (a new
 * reference in *items). Returns a CR_EXIT_* code, errors printed. */
int cr_cli_get_all(const char *cmd, const char *server, const char *path,
                   json_t **items);

/* One Server-Sent Event: its id ("" when none was given), its type
 * ("message" when none) and its data (the data lines joined with "\n"),
 * all borrowed for the call. Returns 0 to go on, non-zero to stop. */
typedef int (*cr_cli_sse_fn)(void *ud, const char *id, const char *event,
                             const char *data);

/* Follows the Server-Sent Events stream GET path of server (api_stream.c):
 * fn gets each event in order. last_id (32 bytes, caller-owned) is sent
 * as Last-Event-ID when not empty and keeps the id of the last event, so a
 * dropped connection (or a server restart) resumes where it stopped: the
 * stream is reopened after 250 ms, doubling up to 10 s while it keeps
 * failing (a Retry-After of a 429 / 503 is honoured up to that bound), and
 * a connection silent for 60 s (the server comments every 15 s) counts as
 * dropped. Returns CR_EXIT_OK when *stop became non-zero or fn stopped,
 * or the exit code of a refusal (a 4xx other than 408 / 429, printed). */
int cr_cli_stream(const char *cmd, const char *server, const char *path,
                  char *last_id, cr_cli_sse_fn fn, void *ud,
                  volatile sig_atomic_t *stop);

#endif
