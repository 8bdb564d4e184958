/*
 * idle_clients: open N PostgreSQL connections concurrently (non-blocking
 * libpq: PQconnectStart + PQconnectPoll + poll()), report how long it took
 * until all of them were logged in, then keep them open and idle until
 * signalled (SIGTERM/SIGINT) or for a fixed number of seconds.
 *
 * Used by bench/run to measure a pooler's memory per idle client and its
 * login throughput.  Build:
 *   gcc -O2 -o idle_clients bench/idle_clients.c $(pkg-config --cflags --libs libpq)
 *
 * Output (stdout, one line each, flushed):
 *   READY connected=N failed=F elapsed_ms=T first_error="..."
 *   DONE connected=N dropped=D held_ms=T
 * The harness reads the pooler's RSS between READY and DONE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s -d CONNINFO -n N [-c INFLIGHT] [-t HOLD_SECONDS] [-T CONNECT_TIMEOUT_S]\n"
          "  -d CONNINFO   libpq connection string (e.g. \"host=127.0.0.1 port=6432 user=u password=p dbname=d\")\n"
          "  -n N          number of connections to open\n"
          "  -c INFLIGHT   at most this many logins in progress at once (default 128; 0 = all at once)\n"
          "  -t SECONDS    hold the connections this long, then exit (default: until SIGTERM/SIGINT)\n"
          "  -T SECONDS    give up on logins still pending after this long (default 300)\n",
          argv0);
}

/* Print a libpq error message on one line, quotes escaped. */
static void print_oneline(FILE *f, const char *msg) {
  for (const char *p = msg; p && *p; ++p) {
    if (*p == '\n' || *p == '\r') {
      if (p[1] != '\0') fputc(' ', f);
    } else if (*p == '"' || *p == '\\') {
      fputc('\\', f);
      fputc(*p, f);
    } else {
      fputc(*p, f);
    }
  }
}

enum slot_state { S_UNUSED = 0, S_CONNECTING, S_OK, S_FAILED, S_DROPPED };

int main(int argc, char **argv) {
  const char *conninfo = NULL;
  long n = -1, inflight_max = 128, connect_timeout_s = 300;
  double hold_s = -1;
  int opt;
  while ((opt = getopt(argc, argv, "d:n:c:t:T:h")) != -1) {
    switch (opt) {
      case 'd': conninfo = optarg; break;
      case 'n': n = strtol(optarg, NULL, 10); break;
      case 'c': inflight_max = strtol(optarg, NULL, 10); break;
      case 't': hold_s = strtod(optarg, NULL); break;
      case 'T': connect_timeout_s = strtol(optarg, NULL, 10); break;
      default: usage(argv[0]); return 2;
    }
  }
  if (!conninfo || n < 0) {
    usage(argv[0]);
    return 2;
  }
  if (inflight_max <= 0) inflight_max = n > 0 ? n : 1;

  /* Raise the open-files limit as far as allowed. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)n + 16 > rl.rlim_cur) {
    fprintf(stderr, "idle_clients: %ld connections need more than the open-files limit %llu; "
                    "split them over several processes\n",
            n, (unsigned long long)rl.rlim_cur);
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  PGconn **conns = calloc((size_t)(n ? n : 1), sizeof *conns);
  unsigned char *state = calloc((size_t)(n ? n : 1), 1);
  PostgresPollingStatusType *want = calloc((size_t)(n ? n : 1), sizeof *want);
  struct pollfd *pfds = calloc((size_t)(n ? n : 1), sizeof *pfds);
  long *pidx = calloc((size_t)(n ? n : 1), sizeof *pidx);
  long *active = calloc((size_t)(n ? n : 1), sizeof *active);
  long nactive = 0;
  if (!conns || !state || !want || !pfds || !pidx || !active) {
    fprintf(stderr, "idle_clients: out of memory\n");
    return 2;
  }

  char first_error[512] = "";
  long started = 0, connected = 0, failed = 0, inflight = 0;
  double t0 = now_ms();
  double deadline = t0 + (double)connect_timeout_s * 1000.0;

  while ((connected + failed < n) && !g_stop) {
    /* Start new logins up to the in-flight limit. */
    while (started < n && inflight < inflight_max) {
      long i = started++;
      PGconn *c = PQconnectStart(conninfo);
      conns[i] = c;
      if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
        state[i] = S_FAILED;
        failed++;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", c ? PQerrorMessage(c) : "out of memory");
        if (c) PQfinish(c);
        conns[i] = NULL;
        continue;
      }
      state[i] = S_CONNECTING;
      want[i] = PGRES_POLLING_WRITING;
      inflight++;
      active[nactive++] = i;
    }
    /* Collect the sockets of the logins in progress (active[] holds them). */
    long np = 0;
    for (long a = 0; a < nactive; ++a) {
      long i = active[a];
      pfds[np].fd = PQsocket(conns[i]);
      pfds[np].events = want[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      pfds[np].revents = 0;
      pidx[np] = i;
      np++;
    }
    if (np == 0) continue;
    int rc = poll(pfds, (nfds_t)np, 200);
    if (rc < 0 && errno != EINTR) {
      perror("poll");
      break;
    }
    for (long k = 0; rc > 0 && k < np; ++k) {
      if (pfds[k].revents == 0) continue;
      long i = pidx[k];
      PostgresPollingStatusType st = PQconnectPoll(conns[i]);
      if (st == PGRES_POLLING_OK) {
        state[i] = S_OK;
        connected++;
        inflight--;
      } else if (st == PGRES_POLLING_FAILED) {
        state[i] = S_FAILED;
        failed++;
        inflight--;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(conns[i]));
        PQfinish(conns[i]);
        conns[i] = NULL;
      } else {
        want[i] = st;
      }
    }
    /* Compact active[]. */
    long w = 0;
    for (long a = 0; a < nactive; ++a)
      if (state[active[a]] == S_CONNECTING) active[w++] = active[a];
    nactive = w;
    if (now_ms() > deadline) {
      for (long a = 0; a < nactive; ++a) {
        long i = active[a];
        state[i] = S_FAILED;
        failed++;
        inflight--;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "login timed out after %ld s", connect_timeout_s);
        PQfinish(conns[i]);
        conns[i] = NULL;
      }
      nactive = 0;
      failed += n - started; /* never started */
      started = n;
    }
  }
  double elapsed = now_ms() - t0;
  printf("READY connected=%ld failed=%ld elapsed_ms=%.1f first_error=\"", connected, failed, elapsed);
  print_oneline(stdout, first_error);
  printf("\"\n");
  fflush(stdout);

  /* Hold the connections idle.  Watch them: a socket that turns readable
   * means the server sent something (usually an error + close). */
  double h0 = now_ms();
  long dropped = 0;
  while (!g_stop) {
    if (hold_s >= 0 && now_ms() - h0 >= hold_s * 1000.0) break;
    long np = 0;
    for (long i = 0; i < n; ++i) {
      if (state[i] != S_OK) continue;
      pfds[np].fd = PQsocket(conns[i]);
      pfds[np].events = POLLIN;
      pfds[np].revents = 0;
      pidx[np] = i;
      np++;
    }
    int rc = poll(pfds, (nfds_t)np, 500);
    if (rc <= 0) continue;
    for (long k = 0; k < np; ++k) {
      if (pfds[k].revents == 0) continue;
      long i = pidx[k];
      if (!PQconsumeInput(conns[i]) || PQstatus(conns[i]) == CONNECTION_BAD ||
          (pfds[k].revents & (POLLHUP | POLLERR))) {
        state[i] = S_DROPPED;
        dropped++;
        if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", PQerrorMessage(conns[i]));
      }
      /* Drain notices/notifications so we don't spin on a readable socket. */
      PGnotify *nt;
      while ((nt = PQnotifies(conns[i])) != NULL) PQfreemem(nt);
    }
  }
  double held = now_ms() - h0;
  printf("DONE connected=%ld dropped=%ld held_ms=%.1f\n", connected - dropped, dropped, held);
  fflush(stdout);
  for (long i = 0; i < n; ++i)
    if (conns[i]) PQfinish(conns[i]);
  free(conns);
  free(state);
  free(want);
  free(pfds);
  free(pidx);
  free(active);
  return 0;
}
