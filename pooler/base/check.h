#pragma once
// POOLER_CHECK: an invariant that, when broken, means a bug: log and abort (always on).
// POOLER_DCHECK: the same, compiled only in debug builds.

#include <cstdio>
#include <cstdlib>

#define POOLER_CHECK(cond, msg)                                                      \
  do {                                                                               \
    if (!(cond)) [[unlikely]] {                                                      \
      std::fprintf(stderr, "pgmux: check failed at %s:%d: %s (%s)\n", __FILE__,       \
                   __LINE__, #cond, msg);                                            \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

#ifdef NDEBUG
#define POOLER_DCHECK(cond, msg) \
  do {                           \
  } while (0)
#else
#define POOLER_DCHECK(cond, msg) POOLER_CHECK(cond, msg)
#endif
