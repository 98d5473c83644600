/* alloc.c: the replaceable allocator (see alloc.h). */
#include "util/alloc.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__ /* defined by the libc headers above */
#include <malloc.h>
#endif

static struct {
  cr_malloc_func m;
  cr_realloc_func r;
  cr_calloc_func c;
  cr_free_func f;
} allocator = {malloc, realloc, calloc, free};

int cr_replace_allocator(cr_malloc_func m, cr_realloc_func r, cr_calloc_func c,
                         cr_free_func f) {
  if (m == NULL || r == NULL || c == NULL || f == NULL)
    return CR_EINVAL;
  allocator.m = m;
  allocator.r = r;
  allocator.c = c;
  allocator.f = f;
  return 0;
}

void *cr__malloc(size_t size) { return allocator.m(size); }
void *cr__calloc(size_t count, size_t size) { return allocator.c(count, size); }
void *cr__realloc(void *ptr, size_t size) { return allocator.r(ptr, size); }
void cr__free(void *ptr) {
  if (ptr != NULL)
    allocator.f(ptr);
}

char *cr__strndup(const char *s, size_t n) {
  if (s == NULL)
    return NULL;
  size_t len = strnlen(s, n);
  char *p = cr__malloc(len + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

char *cr__strdup(const char *s) {
  return s == NULL ? NULL : cr__strndup(s, strlen(s));
}

void cr__secret_wipe(void *p, size_t n) {
  if (p != NULL && n > 0)
    explicit_bzero(p, n);
}

void cr__secret_wipe_free(void *p, size_t n) {
  cr__secret_wipe(p, n);
  cr__free(p);
}

void cr__alloc_tune_process(void) {
#ifdef __GLIBC__
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}
