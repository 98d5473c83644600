/* null_descriptor.c: test plugin whose entry function returns NULL
 * (refuses to load; refused). */
#include <connrun/plugin.h>

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return NULL;
}
