#include "pooler/admin/show.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <map>
#include <utility>

namespace pooler::admin {
namespace {

using Row = std::vector<std::optional<std::string>>;

std::string num(std::uint64_t v) { return std::to_string(v); }
std::string num(std::int64_t v) { return std::to_string(v); }
std::string num(int v) { return std::to_string(v); }
std::string yes_no(bool v) { return v ? "1" : "0"; }

Table make_table(std::initializer_list<std::pair<std::string_view, std::uint32_t>> columns) {
  Table t;
  for (const auto& [name, oid] : columns) {
    t.columns.push_back(Column{std::string(name), oid});
  }
  return t;
}

constexpr std::uint32_t T = kTextOid;
constexpr std::uint32_t I = kInt8Oid;

// A loop-clock instant as wall-clock text, as PgBouncer prints times.
std::string wall_time(const ShowContext& ctx, std::uint64_t loop_now, std::uint64_t loop_then) {
  const std::uint64_t age = loop_now >= loop_then ? loop_now - loop_then : 0;
  const std::time_t t = static_cast<std::time_t>((ctx.wall_now_ms - age) / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf.data(), n);
}

std::pair<std::string, std::string> split_peer(const std::string& peer) {
  const auto colon = peer.rfind(':');
  if (colon == std::string::npos) {
    return {peer, "0"};
  }
  std::string host = peer.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, peer.substr(colon + 1)};
}


Table show_pools(const Snapshots& snaps) {
  Table t = make_table({{"database", T},
                        {"user", T},
                        {"cl_active", I},
                        {"cl_waiting", I},
                        {"cl_active_cancel_req", I},
                        {"cl_waiting_cancel_req", I},
                        {"sv_active", I},
                        {"sv_active_cancel", I},
                        {"sv_being_canceled", I},
                        {"sv_idle", I},
                        {"sv_used", I},
                        {"sv_tested", I},
                        {"sv_login", I},
                        {"maxwait", I},
                        {"maxwait_us", I},
                        {"pool_mode", T},
                        // pgmux
                        {"pool_size", I},
                        {"paused", I},
                        {"pinned", I},
                        {"sv_draining", I}});
  for (const auto& [key, p] : merged_pools(snaps)) {
    const auto& s = p.stats;
    t.rows.push_back(Row{p.database,
                         p.user,
                         num(p.cl_active),
                         num(p.cl_waiting),
                         "0",
                         "0",
                         num(s.active),
                         "0",
                         "0",
                         num(s.idle),
                         "0",
                         "0",
                         num(s.connecting),
                         num(s.max_wait_ms / 1000),
                         num((s.max_wait_ms % 1000) * 1000),
                         std::string(config::to_string(p.mode)),
                         num(p.size),
                         yes_no(p.paused),
                         num(p.pinned),
                         num(s.draining)});
  }
  return t;
}

// Queries, transactions and bytes are counted per worker, not per database: the per-database
// rows carry server assignments only, and the row "*" has the process totals.
Table show_stats(const Snapshots& snaps) {
  Table t = make_table({{"database", T},
                        {"total_server_assignment_count", I},
                        {"total_xact_count", I},
                        {"total_query_count", I},
                        {"total_received", I},
                        {"total_sent", I},
                        {"total_xact_time", I},
                        {"total_query_time", I},
                        {"total_wait_time", I},
                        {"avg_server_assignment_count", I},
                        {"avg_xact_count", I},
                        {"avg_query_count", I},
                        {"avg_recv", I},
                        {"avg_sent", I},
                        {"avg_xact_time", I},
                        {"avg_query_time", I},
                        {"avg_wait_time", I}});
  // Per database: its pools (every user and host) summed; averages per transaction or
  // query since start. "*" sums every database.
  struct Sums {
    std::uint64_t assignments = 0;
    std::uint64_t wait_us = 0;
    backend::PoolTraffic t;
  };
  std::map<std::string, Sums> by_db;
  Sums all;
  for (const auto& [key, p] : merged_pools(snaps)) {
    for (Sums* s : {&by_db[p.database], &all}) {
      s->assignments += p.stats.leases;
      s->wait_us += p.stats.wait_time_us;
      s->t.queries += p.traffic.queries;
      s->t.transactions += p.traffic.transactions;
      s->t.bytes_in += p.traffic.bytes_in;
      s->t.bytes_out += p.traffic.bytes_out;
      s->t.query_time_us += p.traffic.query_time_us;
      s->t.xact_time_us += p.traffic.xact_time_us;
    }
  }
  auto avg = [](std::uint64_t total, std::uint64_t n) { return num(n == 0 ? 0 : total / n); };
  auto row = [&](const std::string& db, const Sums& s) {
    const auto& x = s.t;
    t.rows.push_back(Row{db, num(s.assignments), num(x.transactions), num(x.queries),
                         num(x.bytes_in), num(x.bytes_out), num(x.xact_time_us),
                         num(x.query_time_us), num(s.wait_us), "0", "0", "0",
                         avg(x.bytes_in, x.queries), avg(x.bytes_out, x.queries),
                         avg(x.xact_time_us, x.transactions), avg(x.query_time_us, x.queries),
                         avg(s.wait_us, s.assignments)});
  };
  for (const auto& [db, s] : by_db) {
    row(db, s);
  }
  row("*", all);
  return t;
}

// The tls column: "TLSv1.3/TLS_AES_256_GCM_SHA384" as PgBouncer shows it, NULL in plaintext.
std::optional<std::string> tls_cell(const std::string& tls) {
  return tls.empty() ? std::nullopt : std::optional<std::string>(tls);
}

Table show_clients(const Snapshots& snaps, const ShowContext& ctx) {
  Table t = make_table({{"type", T},
                        {"user", T},
                        {"database", T},
                        {"state", T},
                        {"addr", T},
                        {"port", I},
                        {"local_addr", T},
                        {"local_port", I},
                        {"connect_time", T},
                        {"request_time", T},
                        {"wait", I},
                        {"wait_us", I},
                        {"close_needed", I},
                        {"ptr", T},
                        {"link", T},
                        {"remote_pid", I},
                        {"tls", T},
                        {"application_name", T},
                        {"prepared_statements", I},
                        {"id", I},
                        // pgmux
                        {"pinned", I},
                        {"worker", I},
                        {"pgmux_state", T},
                        {"admin", I}});
  for (const auto& snap : snaps) {
    for (const auto& c : snap.clients) {
      auto [addr, port] = split_peer(c.peer);
      const std::string connected = wall_time(ctx, snap.now_ms, c.connected_ms);
      std::optional<std::string> link;
      if (c.backend_id != 0) {
        link = fmt::format("{:x}", c.backend_id);
      }
      t.rows.push_back(Row{"C",
                           c.user,
                           c.database,
                           std::string(pgbouncer_client_state(c.state)),
                           addr,
                           port,
                           std::nullopt,
                           std::nullopt,
                           connected,
                           connected,
                           num(c.wait_ms / 1000),
                           num((c.wait_ms % 1000) * 1000),
                           "0",
                           fmt::format("{:x}", c.id),
                           link,
                           "0",
                           tls_cell(c.tls),
                           std::nullopt,
                           "0",
                           num(c.id),
                           num(c.pins),
                           num(snap.worker),
                           c.state,
                           yes_no(c.admin)});
    }
  }
  return t;
}

std::string_view pgbouncer_server_state(std::string_view s) {
  if (s == "idle") {
    return "idle";
  }
  if (s == "connecting" || s == "authenticating") {
    return "login";
  }
  return "active";  // active, draining (finishing a departed client's work)
}

Table show_servers(const Snapshots& snaps, const ShowContext& ctx) {
  Table t = make_table({{"type", T},
                        {"user", T},
                        {"database", T},
                        {"replication", T},
                        {"state", T},
                        {"addr", T},
                        {"port", I},
                        {"local_addr", T},
                        {"local_port", I},
                        {"connect_time", T},
                        {"request_time", T},
                        {"wait", I},
                        {"wait_us", I},
                        {"close_needed", I},
                        {"ptr", T},
                        {"link", T},
                        {"remote_pid", I},
                        {"tls", T},
                        {"application_name", T},
                        {"prepared_statements", I},
                        {"id", I},
                        // pgmux
                        {"worker", I},
                        {"pgmux_state", T}});
  for (const auto& snap : snaps) {
    for (const auto& s : snap.servers) {
      std::optional<std::string> link;
      if (s.client_id != 0) {
        link = fmt::format("{:x}", s.client_id);
      }
      t.rows.push_back(Row{"S",
                           s.user,
                           s.database,
                           "none",
                           std::string(pgbouncer_server_state(s.state)),
                           s.address.host,
                           num(static_cast<int>(s.address.port)),
                           std::nullopt,
                           std::nullopt,
                           wall_time(ctx, snap.now_ms, s.created_ms),
                           wall_time(ctx, snap.now_ms, s.last_used_ms),
                           "0",
                           "0",
                           "0",
                           fmt::format("{:x}", s.id),
                           link,
                           num(static_cast<int>(s.pid)),
                           tls_cell(s.tls),
                           std::nullopt,
                           num(static_cast<std::uint64_t>(s.prepared)),
                           num(s.id),
                           num(snap.worker),
                           s.state});
    }
  }
  return t;
}

Table show_databases(const Snapshots& snaps, const ShowContext& ctx) {
  Table t = make_table({{"name", T},
                        {"host", T},
                        {"port", I},
                        {"database", T},
                        {"force_user", T},
                        {"pool_size", I},
                        {"min_pool_size", I},
                        {"reserve_pool", I},
                        {"server_lifetime", I},
                        {"pool_mode", T},
                        {"max_connections", I},
                        {"current_connections", I},
                        {"max_client_connections", I},
                        {"current_client_connections", I},
                        {"paused", I},
                        {"disabled", I},
                        // pgmux
                        {"replicas", T}});
  std::map<std::string, int> servers;
  std::map<std::string, int> clients;
  std::map<std::string, bool> paused;
  for (const auto& [key, p] : merged_pools(snaps)) {
    servers[p.database] += p.stats.active + p.stats.idle + p.stats.connecting + p.stats.draining;
    paused[p.database] = paused[p.database] || p.paused;
  }
  for (const auto& snap : snaps) {
    for (const auto& c : snap.clients) {
      ++clients[c.database];
    }
  }
  for (const auto& [name, db] : ctx.config->databases) {
    std::string replicas;
    for (const auto& r : db.replicas) {
      replicas += (replicas.empty() ? "" : ",") + r.to_string();
    }
    std::optional<std::string> force_user;
    if (db.server_user) {
      force_user = *db.server_user;
    }
    t.rows.push_back(Row{name, db.primary.host, num(static_cast<int>(db.primary.port)), db.dbname,
                         force_user, num(db.pool_size), num(db.min_pool_size),
                         num(db.reserve_pool_size),
                         num(static_cast<std::int64_t>(db.timeouts.server_lifetime.count() / 1000)),
                         std::string(config::to_string(db.pool_mode)), "0", num(servers[name]), "0",
                         num(clients[name]), yes_no(paused[name]), "0", replicas});
  }
  return t;
}

Table show_users(const Snapshots& snaps, const ShowContext& ctx) {
  Table t = make_table({{"name", T},
                        {"pool_size", I},
                        {"reserve_pool_size", I},
                        {"pool_mode", T},
                        {"max_user_connections", I},
                        {"current_connections", I},
                        {"max_user_client_connections", I},
                        {"current_client_connections", I},
                        // pgmux
                        {"auth", T},
                        {"admin", I}});
  std::map<std::string, int> servers;
  std::map<std::string, int> clients;
  for (const auto& [key, p] : merged_pools(snaps)) {
    servers[p.user] += p.stats.active + p.stats.idle + p.stats.connecting + p.stats.draining;
  }
  for (const auto& snap : snaps) {
    for (const auto& c : snap.clients) {
      ++clients[c.user];
    }
  }
  const auto& admins = ctx.config->general.admin_users;
  for (const auto& [name, user] : ctx.config->users) {
    std::optional<std::string> mode;
    if (user.pool_mode) {
      mode = std::string(config::to_string(*user.pool_mode));
    }
    const bool admin = std::find(admins.begin(), admins.end(), name) != admins.end();
    t.rows.push_back(Row{name, "0", "0", mode, "0", num(servers[name]), "0", num(clients[name]),
                         std::string(config::to_string(user.auth)), yes_no(admin)});
  }
  return t;
}

Table show_config(const ShowContext& ctx) {
  Table t = make_table({{"key", T}, {"value", T}, {"default", T}, {"changeable", T}});
  const config::GeneralConfig& g = ctx.config->general;
  const config::GeneralConfig d;
  auto addresses = [](const std::vector<config::HostPort>& list) {
    std::string out;
    for (const auto& a : list) {
      out += (out.empty() ? "" : ",") + a.to_string();
    }
    return out;
  };
  auto secs = [](config::Millis m) {
    return fmt::format("{}", static_cast<double>(m.count()) / 1000.0);
  };
  auto add = [&](std::string_view key, std::string value, std::string def, bool changeable) {
    t.rows.push_back(
        Row{std::string(key), std::move(value), std::move(def), changeable ? "yes" : "no"});
  };
  std::string admins;
  for (const auto& a : g.admin_users) {
    admins += (admins.empty() ? "" : ",") + a;
  }
  add("listen", addresses(g.listen), "127.0.0.1:6432", false);
  add("workers", num(g.workers), num(d.workers), false);
  add("log_level", g.log_level, d.log_level, true);
  add("log_format", std::string(config::to_string(g.log_format)),
      std::string(config::to_string(d.log_format)), false);
  add("max_client_conn", num(g.max_client_conn), num(d.max_client_conn), true);
  add("max_message_size", num(static_cast<std::uint64_t>(g.max_message_size)),
      num(static_cast<std::uint64_t>(d.max_message_size)), true);
  add("shutdown_timeout", secs(g.shutdown_timeout), secs(d.shutdown_timeout), true);
  add("stats_period", secs(g.stats_period), secs(d.stats_period), false);
  add("query_wait_timeout", secs(g.timeouts.query_wait_timeout),
      secs(d.timeouts.query_wait_timeout), true);
  add("idle_transaction_timeout", secs(g.timeouts.idle_transaction_timeout),
      secs(d.timeouts.idle_transaction_timeout), true);
  add("client_idle_timeout", secs(g.timeouts.client_idle_timeout),
      secs(d.timeouts.client_idle_timeout), true);
  add("client_login_timeout", secs(g.timeouts.client_login_timeout),
      secs(d.timeouts.client_login_timeout), true);
  add("server_connect_timeout", secs(g.timeouts.server_connect_timeout),
      secs(d.timeouts.server_connect_timeout), true);
  add("server_lifetime", secs(g.timeouts.server_lifetime), secs(d.timeouts.server_lifetime), true);
  add("server_idle_timeout", secs(g.timeouts.server_idle_timeout),
      secs(d.timeouts.server_idle_timeout), true);
  add("admin_users", admins, "", true);
  add("http_listen", g.http_listen ? g.http_listen->to_string() : "", "", false);
  add("wait_for_primary", g.wait_for_primary ? "true" : "false",
      d.wait_for_primary ? "true" : "false", false);
  return t;
}

Table show_version() {
  Table t = make_table({{"version", T}});
  t.rows.push_back(Row{std::string("pgmux ") + PGMUX_VERSION});
  return t;
}

Table show_lists(const Snapshots& snaps, const ShowContext& ctx) {
  Table t = make_table({{"list", T}, {"items", I}});
  int pools = 0;
  int used_clients = 0;
  int login_clients = 0;
  int used_servers = 0;
  for (const auto& snap : snaps) {
    pools += static_cast<int>(snap.pools.size());
    for (const auto& c : snap.clients) {
      (pgbouncer_client_state(c.state) == "login" ? login_clients : used_clients) += 1;
    }
    used_servers += static_cast<int>(snap.servers.size());
  }
  const std::pair<std::string_view, int> rows[] = {
      {"databases", static_cast<int>(ctx.config->databases.size())},
      {"users", static_cast<int>(ctx.config->users.size())},
      {"pools", pools},
      {"free_clients", 0},
      {"used_clients", used_clients},
      {"login_clients", login_clients},
      {"free_servers", 0},
      {"used_servers", used_servers},
      {"dns_names", 0},
      {"dns_zones", 0},
      {"dns_queries", 0},
      {"dns_pending", 0},
  };
  for (const auto& [name, n] : rows) {
    t.rows.push_back(Row{std::string(name), num(n)});
  }
  return t;
}

Table show_prepared(const Snapshots& snaps) {
  Table t = make_table({{"worker", I}, {"statements", I}, {"hits", I}, {"misses", I}});
  for (const auto& snap : snaps) {
    t.rows.push_back(Row{num(snap.worker),
                         num(static_cast<std::uint64_t>(snap.prepared_statements)),
                         num(snap.counters.prepared_hits), num(snap.counters.prepared_misses)});
  }
  return t;
}

constexpr std::string_view kKnown[] = {
    "pools", "stats",  "clients", "servers", "databases",
    "users", "config", "version", "lists",   "prepared_statements", "replicas"};

}  // namespace

std::string_view pgbouncer_client_state(std::string_view s) {
  if (s == "idle" || s == "active") {
    return "active";
  }
  if (s == "waiting" || s == "waiting_for_params" || s == "throttled") {
    return "waiting";
  }
  if (s == "closing") {
    return "closing";
  }
  return "login";
}

bool show_known(std::string_view what) {
  return std::find(std::begin(kKnown), std::end(kKnown), what) != std::end(kKnown);
}

bool show_needs_snapshots(std::string_view what) { return what != "config" && what != "version"; }

std::optional<Table> show(std::string_view what, const Snapshots& snaps, const ShowContext& ctx) {
  if (what == "pools") {
    return show_pools(snaps);
  }
  if (what == "stats") {
    return show_stats(snaps);
  }
  if (what == "clients") {
    return show_clients(snaps, ctx);
  }
  if (what == "servers") {
    return show_servers(snaps, ctx);
  }
  if (what == "databases") {
    return show_databases(snaps, ctx);
  }
  if (what == "users") {
    return show_users(snaps, ctx);
  }
  if (what == "config") {
    return show_config(ctx);
  }
  if (what == "version") {
    return show_version();
  }
  if (what == "lists") {
    return show_lists(snaps, ctx);
  }
  if (what == "prepared_statements") {
    return show_prepared(snaps);
  }
  if (what == "replicas") {
    return show_replicas(snaps, ctx);
  }
  return std::nullopt;
}

}  // namespace pooler::admin
