/* alloc.h: the one allocator every core allocation goes through.
 *
 * cr__malloc & co. call the functions installed with cr_replace_allocator()
 * (default: libc). Tests install a counting allocator that fails the Nth call
 * to exercise every out-of-memory path. Memory from cr__malloc/cr__calloc/
 * cr__realloc/cr__strdup/cr__strndup is released with cr__free. */
#ifndef CR_ALLOC_H
#define CR_ALLOC_H

#include <stddef.h>

typedef void *(*cr_malloc_func)(size_t size);
typedef void *(*cr_realloc_func)(void *ptr, size_t size);
typedef void *(*cr_calloc_func)(size_t count, size_t size);
typedef void (*cr_free_func)(void *ptr);

/* Replaces the allocator. All four must be given; returns CR_EINVAL otherwise.
 * Call before any other cr_ function, never while objects are alive. */
int cr_replace_allocator(cr_malloc_func m, cr_realloc_func r, cr_calloc_func c,
                         cr_free_func f);

/* Allocate, reallocate and free through the installed allocator, with the
 * semantics of malloc, calloc, realloc and free (cr__free(NULL) is a no-op).
 * The caller owns the result and frees it with cr__free. */
void *cr__malloc(size_t size);
void *cr__calloc(size_t count, size_t size);
void *cr__realloc(void *ptr, size_t size);
void cr__free(void *ptr);
/* Copies s (NULL gives NULL). Caller frees with cr__free. */
char *cr__strdup(const char *s);
/* Copies at most n bytes of s and a NUL. Caller frees with cr__free. */
char *cr__strndup(const char *s, size_t n);
/* Overwrites n bytes at p with zeros in a way the compiler cannot drop
 * (explicit_bzero). For secrets before their memory is released. */
void cr__secret_wipe(void *p, size_t n);
/* Wipes n bytes at p, then cr__free(p). NULL is a no-op. */
void cr__secret_wipe_free(void *p, size_t n);

/* For the long-lived processes (the daemon, a runner host): glibc's heap is
 * trimmed only above 64 MiB of free top memory, not at every large free
 * (SQLite's statement scratch at the heap's top made every claim and
 * transition pay brk system calls: bench_exec's inline rate fell from
 * ~4,000/s to ~1,100/s in some runs). The daemon trims explicitly after a
 * load instead. Idempotent; a no-op off glibc. */
void cr__alloc_tune_process(void);

#endif
