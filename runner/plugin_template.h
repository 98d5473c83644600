/* plugin_template.h: the text of the plugin project `connrun plugins new`
 * writes (runner/plugin_template.c). Every "@NAME@" is the plugin name. */
#ifndef CR_CLI_PLUGIN_TEMPLATE_H
#define CR_CLI_PLUGIN_TEMPLATE_H

/* NAME.c: a health_check + read plugin, commented. */
extern const char cr__plugin_template_c[];
/* Makefile: builds NAME.so with pkg-config connrun-plugin. */
extern const char cr__plugin_template_makefile[];

#endif
