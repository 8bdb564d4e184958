#include "pooler/http/metrics.h"

#include <fmt/format.h>

#include "pooler/admin/gather.h"

#include <map>
#include <tuple>

namespace pooler::http {
namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string json_string(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}



}  // namespace

bool any_live_backend(const admin::Snapshots& snaps) {
  for (const auto& snap : snaps) {
    for (const auto& p : snap.pools) {
      if (p.stats.active + p.stats.idle > 0) {
        return true;
      }
    }
  }
  return false;
}

std::string render_metrics(const admin::Snapshots& snaps) {
  std::string out;
  const auto pools = admin::merged_pools(snaps);

  std::map<std::tuple<std::string, std::string, std::string>, int> clients;
  int pinned = 0;
  client::WorkerCounters c;
  for (const auto& snap : snaps) {
    for (const auto& cl : snap.clients) {
      ++clients[{cl.database, cl.user, cl.state}];
      pinned += cl.pins != 0 ? 1 : 0;
    }
    c += snap.counters;
  }

  header(out, "pgmux_clients", "gauge", "Client connections by database, user and state.");
  for (const auto& [key, n] : clients) {
    const auto& [db, user, state] = key;
    out += fmt::format("pgmux_clients{{database=\"{}\",user=\"{}\",state=\"{}\"}} {}\n", label(db),
                       label(user), label(state), n);
  }

  header(out, "pgmux_server_connections", "gauge",
         "Backend connections to PostgreSQL by database, user and state.");
  for (const auto& [key, p] : pools) {
    const std::pair<std::string_view, int> states[] = {{"active", p.stats.active},
                                                       {"idle", p.stats.idle},
                                                       {"login", p.stats.connecting},
                                                       {"draining", p.stats.draining}};
    for (const auto& [state, n] : states) {
      out +=
          fmt::format("pgmux_server_connections{{database=\"{}\",user=\"{}\",state=\"{}\"}} {}\n",
                      label(key.first), label(key.second), state, n);
    }
  }

  int waiting = 0;
  std::uint64_t max_wait_ms = 0;
  for (const auto& [key, p] : pools) {
    waiting += p.stats.waiting;
    max_wait_ms = std::max(max_wait_ms, p.stats.max_wait_ms);
  }
  header(out, "pgmux_clients_waiting", "gauge", "Clients waiting for a backend.");
  out += fmt::format("pgmux_clients_waiting {}\n", waiting);
  header(out, "pgmux_max_wait_seconds", "gauge", "Longest current wait for a backend.");
  out += fmt::format("pgmux_max_wait_seconds {:.3f}\n", static_cast<double>(max_wait_ms) / 1000.0);

  header(out, "pgmux_pool_size", "gauge", "Configured backends per pool (all workers).");
  for (const auto& [key, p] : pools) {
    out += fmt::format("pgmux_pool_size{{database=\"{}\",user=\"{}\"}} {}\n", label(key.first),
                       label(key.second), p.size);
  }
  header(out, "pgmux_pool_paused", "gauge", "1 while the pool is paused (admin PAUSE).");
  for (const auto& [key, p] : pools) {
    out += fmt::format("pgmux_pool_paused{{database=\"{}\",user=\"{}\"}} {}\n", label(key.first),
                       label(key.second), p.paused ? 1 : 0);
  }
  header(out, "pgmux_server_assignments_total", "counter", "Backends handed to clients.");
  for (const auto& [key, p] : pools) {
    out += fmt::format("pgmux_server_assignments_total{{database=\"{}\",user=\"{}\"}} {}\n",
                       label(key.first), label(key.second), p.stats.leases);
  }
  header(out, "pgmux_server_connect_failures_total", "counter",
         "Failed connections or logins to PostgreSQL.");
  for (const auto& [key, p] : pools) {
    out += fmt::format("pgmux_server_connect_failures_total{{database=\"{}\",user=\"{}\"}} {}\n",
                       label(key.first), label(key.second), p.stats.connect_failures);
  }

  const std::tuple<std::string_view, std::string_view, std::uint64_t> counters[] = {
      {"pgmux_queries_total", "Queries and Syncs forwarded to PostgreSQL.", c.queries},
      {"pgmux_transactions_total", "Transactions completed (ReadyForQuery idle after work).",
       c.transactions},
      {"pgmux_bytes_received_total", "Bytes received from clients.", c.bytes_in},
      {"pgmux_bytes_sent_total", "Bytes sent to clients.", c.bytes_out},
      {"pgmux_prepared_statement_cache_hits_total", "Prepared statements a backend already had.",
       c.prepared_hits},
      {"pgmux_prepared_statement_cache_misses_total",
       "Prepared statements pgmux had to prepare on a backend.", c.prepared_misses},
      {"pgmux_logins_failed_total", "Client logins refused.", c.logins_failed},
      {"pgmux_clients_accepted_total", "Client connections accepted.", c.clients_accepted},
      {"pgmux_pins_total", "Times a client was pinned to its backend.", c.pins},
      {"pgmux_settings_syncs_total", "Backends brought to a client's settings.", c.settings_syncs},
      {"pgmux_routed_primary_total", "Leases routed to the primary (databases with replicas).",
       c.routed_primary},
      {"pgmux_routed_replica_total", "Leases routed to a replica.", c.routed_replica},
      {"pgmux_replica_retries_total",
       "Requests a replica refused as writes (25006), run again on the primary.",
       c.replica_retries},
  };
  for (const auto& [name, help, value] : counters) {
    header(out, name, "counter", help);
    out += fmt::format("{} {}\n", name, value);
  }
  header(out, "pgmux_request_duration_seconds", "histogram",
         "Requests (a Query, or an extended-protocol request up to its Sync) from sending to "
         "ReadyForQuery, by route (with query_stats on).");
  using Counters = client::WorkerCounters;
  for (const auto& [route, lat] : {std::pair{"primary", &c.latency_primary},
                                   std::pair{"replica", &c.latency_replica}}) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < lat->buckets.size(); ++i) {
      cumulative += lat->buckets[i];
      const std::string le =
          i < Counters::kLatencyBounds.size() ? fmt::format("{}", Counters::kLatencyBounds[i]) : "+Inf";
      out += fmt::format("pgmux_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", route,
                         le, cumulative);
    }
    out += fmt::format("pgmux_request_duration_seconds_sum{{route=\"{}\"}} {:.6f}\n", route,
                       static_cast<double>(lat->sum_ns) / 1e9);
    out += fmt::format("pgmux_request_duration_seconds_count{{route=\"{}\"}} {}\n", route, cumulative);
  }
  header(out, "pgmux_errors_total", "counter",
         "ErrorResponses sent to clients (from PostgreSQL or pgmux), by SQLSTATE class.");
  for (std::size_t i = 0; i < c.errors_by_class.size(); ++i) {
    if (c.errors_by_class[i] != 0) {
      out += fmt::format("pgmux_errors_total{{class=\"{}\"}} {}\n", Counters::class_name(i),
                         c.errors_by_class[i]);
    }
  }
  header(out, "pgmux_refused_total", "counter",
         "Connections, logins and requests refused by a limit, by reason.");
  static constexpr std::array<std::string_view, 6> kReasons = {
      "max_client_conn", "address_connections", "address_rate",
      "login_failures",  "user_connections",    "query_rate"};
  for (std::size_t i = 0; i < kReasons.size(); ++i) {
    out += fmt::format("pgmux_refused_total{{reason=\"{}\"}} {}\n", kReasons[i], c.refused[i]);
  }
  // Hosts of databases with replicas, from the health checks' last round (every worker
  // holds the same snapshots).
  header(out, "pgmux_host_up", "gauge",
         "1 when the host answered its last health check, by database, host and role.");
  std::string lag_bytes_lines;
  std::string lag_seconds_lines;
  if (!snaps.empty()) {
    for (const auto& [db, health] : snaps.front().health) {
      if (!health) {
        continue;
      }
      for (std::size_t i = 0; i < health->hosts.size(); ++i) {
        const auto& h = health->hosts[i];
        const std::string labels =
            fmt::format("database=\"{}\",host=\"{}\"", label(db), label(h.address.to_string()));
        out += fmt::format("pgmux_host_up{{{},role=\"{}\"}} {}\n", labels,
                           h.in_recovery ? "replica" : "primary", h.reachable ? 1 : 0);
        if (h.in_recovery) {
          if (auto lag = backend::lag_bytes(*health, static_cast<int>(i))) {
            lag_bytes_lines += fmt::format("pgmux_replica_lag_bytes{{{}}} {}\n", labels, *lag);
          }
          if (h.replay_lag_ms >= 0) {
            lag_seconds_lines += fmt::format("pgmux_replica_lag_seconds{{{}}} {:.3f}\n", labels,
                                             static_cast<double>(h.replay_lag_ms) / 1000.0);
          }
        }
      }
    }
  }
  header(out, "pgmux_replica_lag_bytes", "gauge", "WAL a replica has still to replay.");
  out += lag_bytes_lines;
  header(out, "pgmux_replica_lag_seconds", "gauge",
         "now() - pg_last_xact_replay_timestamp() on a replica (grows while the primary is idle).");
  out += lag_seconds_lines;
  header(out, "pgmux_pinned_clients", "gauge", "Clients pinned to their backend.");
  out += fmt::format("pgmux_pinned_clients {}\n", pinned);
  std::size_t statements = 0;
  for (const auto& snap : snaps) {
    statements += snap.prepared_statements;
  }
  header(out, "pgmux_prepared_statements", "gauge", "Distinct prepared statements (all workers).");
  out += fmt::format("pgmux_prepared_statements {}\n", statements);
  std::size_t shapes = 0;
  std::uint64_t parse_hits = 0;
  std::uint64_t parse_misses = 0;
  for (const auto& snap : snaps) {
    shapes += snap.query_shapes;
    parse_hits += snap.parse_cache_hits;
    parse_misses += snap.parse_cache_misses;
  }
  header(out, "pgmux_query_shapes", "gauge", "Query shapes with statistics (summed over workers).");
  out += fmt::format("pgmux_query_shapes {}\n", shapes);
  header(out, "pgmux_parse_cache_hits_total", "counter", "Query analyses found in the parse cache.");
  out += fmt::format("pgmux_parse_cache_hits_total {}\n", parse_hits);
  header(out, "pgmux_parse_cache_misses_total", "counter", "Query analyses not in the parse cache.");
  out += fmt::format("pgmux_parse_cache_misses_total {}\n", parse_misses);
  return out;
}

std::string render_advice_metrics(const advice::AdviceStore& store, std::uint64_t samples_dropped) {
  std::string out;
  header(out, "pgmux_index_advice_records", "gauge", "Query shapes that lack an index (index advice).");
  out += fmt::format("pgmux_index_advice_records {}\n", store.size());
  header(out, "pgmux_index_advice_samples_dropped_total", "counter",
         "Samples dropped because the index advisor's queue was full.");
  out += fmt::format("pgmux_index_advice_samples_dropped_total {}\n", samples_dropped);
  return out;
}

std::string render_advice_json(const std::vector<advice::AdviceRecord>& records) {
  std::string out = "[";
  bool first = true;
  for (const auto& r : records) {
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += advice::to_json(r);
  }
  out += first ? "]\n" : "\n]\n";
  return out;
}

std::string render_pools_json(const admin::Snapshots& snaps) {
  std::string out = "[";
  bool first = true;
  for (const auto& [key, p] : admin::merged_pools(snaps)) {
    out += first ? "\n" : ",\n";
    first = false;
    out += fmt::format(
        "  {{\"database\": {}, \"user\": {}, \"pool_mode\": {}, \"pool_size\": {}, "
        "\"paused\": {}, \"cl_active\": {}, \"cl_waiting\": {}, \"sv_active\": {}, "
        "\"sv_idle\": {}, \"sv_login\": {}, \"sv_draining\": {}, \"maxwait_ms\": {}, "
        "\"pinned\": {}, \"server_assignments\": {}, \"connect_failures\": {}, "
        "\"last_error\": {}}}",
        json_string(key.first), json_string(key.second), json_string(config::to_string(p.mode)),
        p.size, p.paused ? "true" : "false", p.cl_active, p.cl_waiting, p.stats.active,
        p.stats.idle, p.stats.connecting, p.stats.draining, p.stats.max_wait_ms, p.pinned,
        p.stats.leases, p.stats.connect_failures, json_string(p.last_error));
  }
  return out + "\n]\n";
}

}  // namespace pooler::http
