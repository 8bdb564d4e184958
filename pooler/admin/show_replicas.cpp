// SHOW REPLICAS: what routing knows of each host, from the health checks' last round.
// PgBouncer has no such command; the columns are pgmux's own.

#include <fmt/format.h>

#include <array>
#include <ctime>

#include "pooler/admin/show.h"

namespace pooler::admin {
namespace {

using Row = std::vector<std::optional<std::string>>;

std::string wall_text(std::uint64_t wall_ms) {
  const auto t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf.data(), n);
}

// One host's row. `snap` is nullptr for a database without health checks (no replicas, or
// no login for them): only the configured address and role are known.
Row host_row(const std::string& db, const config::HostPort& address, int index,
             const backend::HealthSnapshot* snap, std::uint64_t loop_now, std::uint64_t wall_now) {
  // Checked: a check ran (and maybe failed: a host never reached has no check time).
  const bool checked = snap != nullptr && backend::valid_index(*snap, index) &&
                       (snap->hosts[static_cast<std::size_t>(index)].checked_at_ms != 0 ||
                        !snap->hosts[static_cast<std::size_t>(index)].last_error.empty());
  // Roles follow the servers: the configured one until a host answered.
  std::string role = index == 0 ? "primary" : "replica";
  Row row{db, address.host, std::to_string(address.port)};
  if (!checked) {
    row.insert(row.end(), {role, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                           std::nullopt, std::nullopt, std::nullopt});
    return row;
  }
  const auto& h = snap->hosts[static_cast<std::size_t>(index)];
  if (h.checked_at_ms != 0) {
    role = h.in_recovery ? "replica" : "primary";
  }
  const bool healthy = h.in_recovery ? backend::usable_replica(*snap, index)
                                     : h.reachable && index == snap->primary_index;
  std::optional<std::string> lag_bytes;
  if (h.in_recovery) {
    if (auto lag = backend::lag_bytes(*snap, index)) {
      lag_bytes = std::to_string(*lag);
    }
  }
  std::optional<std::string> lag_ms;
  if (h.in_recovery && h.replay_lag_ms >= 0) {
    lag_ms = std::to_string(h.replay_lag_ms);
  }
  std::optional<std::string> banned_until;
  std::optional<std::string> ban_left;
  if (h.banned_until_ms > loop_now) {
    const std::uint64_t left = h.banned_until_ms - loop_now;
    banned_until = wall_text(wall_now + left);
    ban_left = fmt::format("{:.1f}", static_cast<double>(left) / 1000.0);
  }
  std::optional<std::string> last_check;
  if (h.checked_at_ms != 0) {
    const std::uint64_t age = loop_now >= h.checked_at_ms ? loop_now - h.checked_at_ms : 0;
    last_check = wall_text(wall_now - age);
  }
  row.insert(row.end(),
             {role, healthy ? "1" : "0", lag_bytes, lag_ms, banned_until, ban_left, last_check,
              h.last_error.empty() ? std::nullopt : std::optional(h.last_error)});
  return row;
}

}  // namespace

Table show_replicas(const Snapshots& snaps, const ShowContext& ctx) {
  Table t;
  for (const auto& [name, oid] : std::initializer_list<std::pair<const char*, std::uint32_t>>{
           {"database", kTextOid},
           {"host", kTextOid},
           {"port", kInt8Oid},
           {"role", kTextOid},       // primary | replica: what the host answered, else configured
           {"healthy", kInt8Oid},    // 1 = reachable in its role; NULL = not checked
           {"lag_bytes", kInt8Oid},  // WAL the replica has still to replay
           {"lag_ms", kInt8Oid},     // now() - pg_last_xact_replay_timestamp() on the replica
           {"banned_until", kTextOid},
           {"ban_seconds_left", kTextOid},
           {"last_check", kTextOid},  // when the last successful check was sent
           {"last_error", kTextOid}}) {
    t.columns.push_back(Column{name, oid});
  }
  // Every worker holds the same snapshots; the first one's are as good as any.
  const WorkerSnapshot* first = snaps.empty() ? nullptr : &snaps.front();
  for (const auto& [name, db] : ctx.config->databases) {
    const backend::HealthSnapshot* health = nullptr;
    if (first != nullptr) {
      if (auto it = first->health.find(name); it != first->health.end()) {
        health = it->second.get();
      }
    }
    const std::uint64_t loop_now = first != nullptr ? first->now_ms : 0;
    t.rows.push_back(host_row(name, db.primary, 0, health, loop_now, ctx.wall_now_ms));
    for (std::size_t i = 0; i < db.replicas.size(); ++i) {
      t.rows.push_back(host_row(name, db.replicas[i], static_cast<int>(i) + 1, health, loop_now,
                                ctx.wall_now_ms));
    }
  }
  return t;
}

}  // namespace pooler::admin
