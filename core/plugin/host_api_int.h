/* host_api_int.h: what host_api.c (the table, logging, cancellation) and
 * host_http.c (HTTP through libcurl, blocking and in the background) share.
 * Not for other modules: they use host_api.h. */
#ifndef CR_HOST_API_INT_H
#define CR_HOST_API_INT_H

#include "plugin/host_api.h"

/* Non-zero when ctx asked the plugin to stop (its flag or cancel_also). Any
 * thread. */
int cr__host_cancelled(cr_plugin_ctx *ctx);

/* Non-zero when a line at level would reach ctx's log sink. */
int cr__host_wants_log(const cr_plugin_ctx *ctx, int level);

/* Logs a line built only from redacted parts (truncation is harmless). The
 * ctx's thread only. */
void cr__host_log_redacted(cr_plugin_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* api->http, api->http_response_free, api->http_start and api->http_finish
 * (contracts in connrun/plugin.h). */
int cr__host_http(cr_plugin_ctx *ctx, const struct cr_http_request *req,
                  struct cr_http_response *resp);
void cr__host_http_response_free(cr_plugin_ctx *ctx,
                                 struct cr_http_response *resp);
int cr__host_http_start(cr_plugin_ctx *ctx, const struct cr_http_request *req);
int cr__host_http_finish(cr_plugin_ctx *ctx, struct cr_http_response *resp);

/* Releases ctx's HTTP resources: aborts a background request still in
 * flight and waits for it, joins its thread, frees both easy handles. The
 * ctx may make requests again afterwards. NULL is a no-op. */
void cr__host_http_cleanup(cr_plugin_ctx *ctx);

#endif
