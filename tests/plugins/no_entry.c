/* no_entry.c: a shared object that exports a symbol, but not the connrun
 * entry point (refused). */
#include <connrun/plugin.h>

CR_PLUGIN_EXPORT int not_a_connrun_entry(void);
CR_PLUGIN_EXPORT int not_a_connrun_entry(void) { return 42; }
