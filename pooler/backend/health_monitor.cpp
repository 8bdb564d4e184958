#include "pooler/backend/health_monitor.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "pooler/base/check.h"

namespace pooler::backend {
namespace {

constexpr const char* kCheckQuery =
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, "
    "extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000";

// libpq's messages end with a newline; the log and last_error do without it.
std::string trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s.empty() ? "unknown libpq error" : s;
}

void ignore_notice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

HealthMonitor::HealthMonitor(net::Loop& loop, HealthMonitorOptions options,
                             SnapshotCallback on_snapshot)
    : loop_(loop),
      options_(std::move(options)),
      on_snapshot_(std::move(on_snapshot)),
      tick_(loop, [this] { on_tick(); }) {
  hosts_.resize(options_.hosts.size());
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    Host& host = hosts_[i];
    host.state.address = options_.hosts[i];
    // The handles are owned here and die with the monitor, so capturing `this` is safe:
    // a destroyed Timer/FdWatcher never calls back.
    host.watcher = std::make_unique<net::FdWatcher>(
        loop_, [this, i](Result<int> events) { on_ready(i, std::move(events)); });
    host.deadline = std::make_unique<net::Timer>(loop_, [this, i] {
      fail(i, hosts_[i].phase == Phase::Connecting ? "connect timed out" : "check timed out");
    });
  }
}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::start() {
  running_ = true;
  tick_.start(std::chrono::milliseconds(0), options_.period);
}

void HealthMonitor::stop() {
  running_ = false;
  round_active_ = false;
  tick_.stop();
  for (Host& host : hosts_) {
    host.deadline->stop();
    host.pending = false;
    close_connection(host);
  }
}

void HealthMonitor::on_tick() {
  if (!running_) {
    return;
  }
  if (round_active_) {
    ++skipped_ticks_;
    return;
  }
  round_active_ = true;
  starting_round_ = true;  // a host failing synchronously must not end the round early
  const std::uint64_t now = net::now_ms(loop_);
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    Host& host = hosts_[i];
    if (host.state.banned_until_ms > now) {
      continue;  // stays unreachable until the ban ends
    }
    host.pending = true;
    switch (host.phase) {
      case Phase::Closed: begin_connect(i); break;
      case Phase::Idle: send_check(i); break;
      case Phase::Connecting:
      case Phase::Querying:
        POOLER_CHECK(false, "health check still running at the start of a round");
    }
  }
  starting_round_ = false;
  if (std::none_of(hosts_.begin(), hosts_.end(), [](const Host& h) { return h.pending; })) {
    finish_round();
  }
}

void HealthMonitor::begin_connect(std::size_t i) {
  Host& host = hosts_[i];
  const std::string port = std::to_string(host.state.address.port);
  // No connect_timeout: libpq applies it only to blocking connects; `deadline` does it here.
  std::vector<const char*> keys = {"host", "port", "user", "password", "dbname",
                                   "application_name"};
  std::vector<const char*> values = {host.state.address.host.c_str(), port.c_str(),
                                     options_.user.c_str(),           options_.password.c_str(),
                                     options_.dbname.c_str(),         options_.application_name.c_str()};
  for (const auto& [key, value] : options_.tls_params) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  host.conn = PQconnectStartParams(keys.data(), values.data(), 0);
  host.phase = Phase::Connecting;
  if (host.conn == nullptr) {
    fail(i, "PQconnectStartParams: out of memory");
    return;
  }
  if (PQstatus(host.conn) == CONNECTION_BAD) {
    fail(i, trimmed(PQerrorMessage(host.conn)));
    return;
  }
  PQsetNoticeProcessor(host.conn, ignore_notice, nullptr);
  host.deadline->start(options_.timeout);
  // libpq: "at the beginning, act as if PQconnectPoll had returned PGRES_POLLING_WRITING".
  if (auto started = host.watcher->start(PQsocket(host.conn), net::FdWatcher::kWritable);
      !started) {
    fail(i, started.error().message);
  }
}

void HealthMonitor::continue_connect(std::size_t i) {
  Host& host = hosts_[i];
  const PostgresPollingStatusType polled = PQconnectPoll(host.conn);
  int events = 0;
  switch (polled) {
    case PGRES_POLLING_OK:
      host.deadline->stop();
      host.watcher->stop();
      if (PQsetnonblocking(host.conn, 1) != 0) {
        fail(i, trimmed(PQerrorMessage(host.conn)));
        return;
      }
      host.phase = Phase::Idle;
      send_check(i);
      return;
    case PGRES_POLLING_FAILED:
      fail(i, trimmed(PQerrorMessage(host.conn)));
      return;
    case PGRES_POLLING_READING: events = net::FdWatcher::kReadable; break;
    case PGRES_POLLING_WRITING: events = net::FdWatcher::kWritable; break;
    case PGRES_POLLING_ACTIVE: events = net::FdWatcher::kWritable; break;  // unused by libpq
  }
  // libpq may have replaced the socket (next address, SSL/GSS fallback), possibly under
  // the same fd number: always register the current socket afresh.
  host.watcher->close();
  if (auto started = host.watcher->start(PQsocket(host.conn), events); !started) {
    fail(i, started.error().message);
  }
}

void HealthMonitor::send_check(std::size_t i) {
  Host& host = hosts_[i];
  host.got_row = false;
  host.query_error.clear();
  host.state.checked_at_ms = net::now_ms(loop_);
  host.state.checked_at_ns = net::now_ns();
  if (PQsendQuery(host.conn, kCheckQuery) == 0) {
    fail(i, trimmed(PQerrorMessage(host.conn)));
    return;
  }
  host.phase = Phase::Querying;
  host.deadline->start(options_.timeout);
  on_query_ready(i, net::FdWatcher::kWritable);  // flush what PQsendQuery left
}

void HealthMonitor::on_query_ready(std::size_t i, int events) {
  Host& host = hosts_[i];
  if ((events & net::FdWatcher::kReadable) != 0) {
    if (PQconsumeInput(host.conn) == 0) {
      fail(i, trimmed(PQerrorMessage(host.conn)));
      return;
    }
  }
  const int flushed = PQflush(host.conn);
  if (flushed < 0) {
    fail(i, trimmed(PQerrorMessage(host.conn)));
    return;
  }
  if ((events & net::FdWatcher::kReadable) != 0) {
    read_results(i);
    if (host.phase != Phase::Querying) {
      return;  // finished or failed
    }
  }
  const int want = net::FdWatcher::kReadable | (flushed == 1 ? net::FdWatcher::kWritable : 0);
  if (auto started = host.watcher->start(PQsocket(host.conn), want); !started) {
    fail(i, started.error().message);
  }
}

void HealthMonitor::read_results(std::size_t i) {
  Host& host = hosts_[i];
  while (PQisBusy(host.conn) == 0) {
    PGresult* res = PQgetResult(host.conn);
    if (res == nullptr) {  // the query is complete
      if (!host.query_error.empty()) {
        fail(i, host.query_error);
      } else if (!host.got_row) {
        fail(i, "check query returned no row");
      } else {
        succeed(i);
      }
      return;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 3) {
      host.got_row = true;
      host.row_in_recovery = std::string_view(PQgetvalue(res, 0, 0)) == "t";
      host.row_lsn = 0;
      if (PQgetisnull(res, 0, 1) == 0) {
        host.row_lsn = parse_lsn(PQgetvalue(res, 0, 1)).value_or(0);
      }
      host.row_lag_ms = -1;
      if (PQgetisnull(res, 0, 2) == 0) {
        const double ms = std::strtod(PQgetvalue(res, 0, 2), nullptr);
        host.row_lag_ms = ms < 0 ? 0 : static_cast<std::int64_t>(ms);
      }
    } else if (host.query_error.empty()) {
      host.query_error = PQresultStatus(res) == PGRES_TUPLES_OK
                             ? std::string("check query returned an unexpected shape")
                             : trimmed(PQresultErrorMessage(res));
    }
    PQclear(res);
  }
}

void HealthMonitor::on_ready(std::size_t i, Result<int> events) {
  Host& host = hosts_[i];
  if (!events) {
    // libuv reports a socket error (POLLERR, e.g. a reset after the server went away) as
    // EBADF; libpq's own reading of the socket says what happened, so let it look first.
    if (host.phase == Phase::Querying && PQconsumeInput(host.conn) == 0) {
      fail(i, trimmed(PQerrorMessage(host.conn)));
      return;
    }
    if (host.phase == Phase::Querying) {
      read_results(i);  // fails the host with the server's error if it sent one
    } else if (host.phase == Phase::Connecting &&
               PQconnectPoll(host.conn) == PGRES_POLLING_FAILED) {
      fail(i, trimmed(PQerrorMessage(host.conn)));
      return;
    }
    if (host.phase == Phase::Querying || host.phase == Phase::Connecting) {
      // The server's FATAL (e.g. "terminating connection due to administrator command")
      // when it sent one before the reset.
      fail(i, host.phase == Phase::Querying && !host.query_error.empty()
                  ? host.query_error
                  : events.error().message);
    }
    return;
  }
  switch (host.phase) {
    case Phase::Connecting: continue_connect(i); return;
    case Phase::Querying: on_query_ready(i, *events); return;
    case Phase::Idle:
    case Phase::Closed: host.watcher->stop(); return;  // not watching in these phases
  }
}

void HealthMonitor::succeed(std::size_t i) {
  Host& host = hosts_[i];
  host.deadline->stop();
  host.watcher->stop();
  host.phase = Phase::Idle;
  HostState& s = host.state;
  if (!s.reachable) {
    spdlog::info("health: {} reachable ({})", s.address.to_string(),
                 host.row_in_recovery ? "replica" : "primary");
  } else if (s.in_recovery != host.row_in_recovery) {
    spdlog::warn("health: {} is now a {}", s.address.to_string(),
                 host.row_in_recovery ? "replica" : "primary");
  }
  s.reachable = true;
  s.in_recovery = host.row_in_recovery;
  s.lsn = host.row_lsn;
  s.replay_lag_ms = host.row_in_recovery ? host.row_lag_ms : -1;
  s.consecutive_failures = 0;
  s.banned_until_ms = 0;
  s.last_error.clear();
  host_done(i);
}

void HealthMonitor::fail(std::size_t i, std::string message) {
  Host& host = hosts_[i];
  host.deadline->stop();
  close_connection(host);
  HostState& s = host.state;
  if (s.reachable || s.consecutive_failures == 0) {
    spdlog::warn("health: {} unreachable: {}", s.address.to_string(), message);
  }
  s.reachable = false;
  ++s.consecutive_failures;
  const int doublings = std::min(s.consecutive_failures - 1, 16);
  const auto backoff =
      std::min<std::int64_t>(options_.backoff_min.count() << doublings, options_.backoff_max.count());
  s.banned_until_ms = net::now_ms(loop_) + static_cast<std::uint64_t>(backoff);
  s.last_error = std::move(message);
  host_done(i);
}

void HealthMonitor::close_connection(Host& host) {
  host.watcher->close();  // before PQfinish closes the fd
  if (host.conn != nullptr) {
    PQfinish(host.conn);
    host.conn = nullptr;
  }
  host.phase = Phase::Closed;
}

void HealthMonitor::host_done(std::size_t i) {
  Host& host = hosts_[i];
  if (!host.pending) {
    return;
  }
  host.pending = false;
  if (round_active_ && !starting_round_ &&
      std::none_of(hosts_.begin(), hosts_.end(), [](const Host& h) { return h.pending; })) {
    finish_round();
  }
}

void HealthMonitor::finish_round() {
  round_active_ = false;
  auto snapshot = std::make_shared<HealthSnapshot>();
  snapshot->hosts.reserve(hosts_.size());
  for (const Host& host : hosts_) {
    snapshot->hosts.push_back(host.state);
  }
  for (std::size_t i = 0; i < snapshot->hosts.size(); ++i) {
    const HostState& h = snapshot->hosts[i];
    if (!h.reachable || h.in_recovery) {
      continue;
    }
    ++snapshot->primary_count;
    if (snapshot->primary_index < 0 || h.lsn > snapshot->primary_lsn) {
      snapshot->primary_index = static_cast<int>(i);
      snapshot->primary_lsn = h.lsn;
    }
  }
  if (snapshot->primary_count > 1) {
    spdlog::warn("health: {} hosts claim to be the primary; using {}", snapshot->primary_count,
                 snapshot->hosts[snapshot->primary_index].address.to_string());
  }
  snapshot->taken_at_ms = net::now_ms(loop_);
  snapshot->generation = ++generation_;
  latest_ = std::move(snapshot);
  if (on_snapshot_) {
    on_snapshot_(latest_);
  }
}

}  // namespace pooler::backend
