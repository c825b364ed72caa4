// A shifted wall clock for the date check (`npm run test:dates`): preloaded into every process
// of the run (Node, PostgreSQL, Redis, Chromium), it adds TG_CLOCK_OFFSET_MS to the realtime
// clock and leaves monotonic clocks alone. libfaketime does more, but deadlocks in Redis's
// jemalloc at start-up and loses its setting in PostgreSQL once the postmaster rewrites its
// process title. This reads the offset once, calls libc's own clock_gettime (the fast vDSO
// path) once it is resolved, and a raw syscall before that: resolving it may allocate, and an
// allocator that reads the clock (jemalloc) would otherwise come back here mid-resolve.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_ns;
static int offset_read;

static long long offset(void) {
  if (!offset_read) {
    const char *s = getenv("TG_CLOCK_OFFSET_MS");
    offset_ns = s ? atoll(s) * 1000000LL : 0;
    offset_read = 1;
  }
  return offset_ns;
}

__attribute__((constructor)) static void init(void) { offset(); }

typedef int (*clock_fn)(clockid_t, struct timespec *);
static clock_fn real_clock;
static int resolving;

static int read_clock(clockid_t id, struct timespec *ts) {
  if (!real_clock && !resolving) {
    resolving = 1;
    real_clock = (clock_fn)dlsym(RTLD_NEXT, "clock_gettime");
    resolving = 0;
  }
  return real_clock ? real_clock(id, ts) : (int)syscall(SYS_clock_gettime, id, ts);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  int r = read_clock(id, ts);
  if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI)) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset();
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
  }
  return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
  (void)tz;
  struct timespec ts;
  int r = clock_gettime(CLOCK_REALTIME, &ts);
  if (r == 0) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return r;
}

time_t time(time_t *t) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (t) *t = ts.tv_sec;
  return ts.tv_sec;
}
