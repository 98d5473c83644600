/* api_client.h: the CLI against a running server (kubectl/gh style): the
 * server from --server URL or CONNRUN_SERVER, the token from CONNRUN_TOKEN
 * (never from the command line, so it stays out of shell history and ps),
 * one JSON request with libcurl, and the server's JSON error printed the
 * way local errors are. */
#ifndef CR_API_CLIENT_H
#define CR_API_CLIENT_H

#include <jansson.h>

/* The server to use: server_flag (borrowed, may be NULL) or
 * $CONNRUN_SERVER; NULL when neither is set (work locally). */
const char *cr_cli_server(const char *server_flag);

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

#endif
