#pragma once
// The result sets of the admin console's SHOW commands, built from worker snapshots.
// Column names and meanings follow PgBouncer's where it has the command; pgmux's own
// columns come after them. Pure functions: no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/admin/gather.h"
#include "pooler/config/config.h"

namespace pooler::admin {

inline constexpr std::uint32_t kTextOid = 25;
inline constexpr std::uint32_t kInt8Oid = 20;

struct Column {
  std::string name;
  std::uint32_t type_oid = kTextOid;
};

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt = NULL
};

// What SHOW needs besides the snapshots. `wall_now_ms` converts loop clocks to times.
struct ShowContext {
  const config::Config* config = nullptr;
  std::uint64_t wall_now_ms = 0;
};

// SHOW <what> for `what` in lower case ("pools", "stats", ...); nullopt if unknown.
std::optional<Table> show(std::string_view what, const Snapshots& snapshots,
                          const ShowContext& context);
// Whether SHOW <what> needs the workers' snapshots (otherwise: config only).
bool show_needs_snapshots(std::string_view what);
bool show_known(std::string_view what);

// SHOW REPLICAS (pgmux's own, show_replicas.cpp): one row per host per database, with the
// role, health, lag and ban from the last health check.
Table show_replicas(const Snapshots& snapshots, const ShowContext& context);

// PgBouncer's client state names: "active", "waiting", "login".
std::string_view pgbouncer_client_state(std::string_view pgmux_state);

}  // namespace pooler::admin
