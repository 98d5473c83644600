/* socket_user.c: opens its own TCP connection instead of using api->http
 * (it imports socket and connect); `connrun plugins test` must fail its
 * imports check. */
#include "tp_common.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int su_health(void *instance, cr_plugin_ctx *ctx,
                     struct cr_plugin_health_result *out) {
  (void)instance;
  (void)ctx;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  out->status = ok ? CR_PLUGIN_HEALTH_HEALTHY : CR_PLUGIN_HEALTH_UNKNOWN;
  return CR_PLUGIN_OK;
}

static const char *const su_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor su_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "socket_user",
    .version = "0.0.1",
    .auth_methods = su_methods,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,
    .create = tp_create,
    .destroy = tp_destroy,
    .health_check = su_health,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &su_desc;
}
