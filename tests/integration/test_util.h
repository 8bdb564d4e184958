#pragma once
// Helpers the integration suites share (one copy instead of one per suite): polling,
// results of queries sent with PQsend*, backends counted from a superuser connection, raw
// loopback sockets and the startup packet, a one-shot HTTP GET.

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/integration/pg_client.h"
#include "tests/integration/postgres_environment.h"

namespace pooler::integration {

inline PostgresEnvironment& pg() { return PostgresEnvironment::instance(); }

// The app user straight to the primary over TCP: the reference pgmux is compared with.
std::string direct_conninfo();

// A name no other test (or earlier run of this one) uses. Thread-safe.
std::string unique_name(std::string_view prefix);

bool contains(const std::string& text, const std::string& part);

// Polls `done` every `poll` until it holds (true) or `timeout` passes (false).
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout,
              std::chrono::milliseconds poll = std::chrono::milliseconds(20));

double seconds_since(std::chrono::steady_clock::time_point start);

// ---- libpq ---------------------------------------------------------------------------

// The index of the column called `name` in `r`, or -1.
int column(const PgResult& r, const std::string& name);

// Waits until libpq can return a result without blocking; false at the deadline. A broken
// connection counts as ready: PQgetResult reports it.
bool wait_result_ready(PGconn* c, std::chrono::steady_clock::time_point deadline);

// The first error result (else the last result) of a query sent with PQsend*; nullopt if
// it is not finished within `timeout`, so a hang fails the test instead of blocking it.
std::optional<PgResult> finish_query(PGconn* c, std::chrono::milliseconds timeout);

// Client backends of user app on the primary matching `where` (an SQL condition), counted
// through the superuser connection `su`; -1 on error.
int app_backends(const PgConn& su, const std::string& where = "true");

// "pid state query" of every backend of user app, one per line, for failure messages.
std::string app_activity(const PgConn& su);

// ---- Raw sockets (what libpq cannot send) --------------------------------------------

// A blocking TCP socket connected to 127.0.0.1:port (close-on-exec); -1 on failure.
int connect_loopback(int port);

// What the peer sends until it closes (`*closed` true), `enough(data)` holds, or `timeout`
// passes.
std::string read_socket(int fd, std::chrono::milliseconds timeout, bool* closed = nullptr,
                        const std::function<bool(const std::string&)>& enough = {});

std::string be32(std::uint32_t v);

// A StartupMessage: length, protocol version, name/value pairs, terminator.
std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                           std::uint32_t version = 3u << 16);

// ---- HTTP ----------------------------------------------------------------------------

struct HttpReply {
  int status = 0;  // 0 when there was no answer
  std::string body;
};

// One GET over a fresh connection to 127.0.0.1:port; pgmux closes it after the answer.
HttpReply http_get(int port, const std::string& path);

}  // namespace pooler::integration
