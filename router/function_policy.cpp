#include "router/function_policy.h"

#include <algorithm>
#include <iterator>

namespace router {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return out;
}

std::string_view bare_name(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

// Functions that change data, take locks, or act on the server they run on: a replica would
// refuse them or do the wrong thing (a lock no writer sees, a backend pid of another host).
constexpr std::string_view kAlwaysPrimary[] = {
    "nextval", "setval", "currval", "lastval",
    "set_config", "pg_notify", "loread", "lowrite",
    "txid_current", "pg_current_xact_id", "pg_switch_wal", "pg_create_restore_point",
    "pg_logical_emit_message", "pg_cancel_backend", "pg_terminate_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_backup_start", "pg_backup_stop", "pg_export_snapshot",
    "pg_drop_replication_slot", "pg_replication_slot_advance", "pg_import_system_collations",
    "pg_promote", "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_nextoid",
    "pg_stat_force_next_flush", "pg_log_backend_memory_contexts", "pg_start_backup",
};
constexpr std::string_view kAlwaysPrimaryPrefixes[] = {
    "pg_advisory_", "pg_try_advisory_", "lo_",  "dblink",
    "pg_current_wal_", "pg_create_", "pg_copy_", "pg_replication_origin_",
    "pg_logical_slot_", "pg_stat_reset", "binary_upgrade_", "pg_stop_backup",
};

// Volatile built-ins whose result on a caught-up replica is as valid as on the primary.
// pg_is_in_recovery() and the replay functions describe the host that answers, which is
// what a client asking through pgmux gets anyway (and what placement tests rely on).
constexpr std::string_view kHarmless[] = {
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
    "uuid_generate_v4", "gen_random_bytes", "gen_salt", "clock_timestamp",
    "timeofday", "pg_sleep", "pg_sleep_for", "pg_sleep_until",
    "current_query", "pg_is_in_recovery", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp", "pg_is_wal_replay_paused", "pg_get_wal_replay_pause_state",
    "pg_stat_clear_snapshot", "pg_jit_available", "pg_database_size", "pg_relation_size",
    "pg_table_size", "pg_indexes_size", "pg_total_relation_size", "pg_tablespace_size",
    "pg_partition_tree", "pg_partition_ancestors", "random_normal", "txid_current_if_assigned",
};

bool always_primary(std::string_view bare) {
  return std::ranges::find(kAlwaysPrimary, bare) != std::end(kAlwaysPrimary) ||
         std::ranges::any_of(kAlwaysPrimaryPrefixes,
                             [&](std::string_view p) { return bare.starts_with(p); });
}

bool harmless(std::string_view bare) {
  return std::ranges::find(kHarmless, bare) != std::end(kHarmless) ||
         bare.starts_with("pg_stat_get_xact_");  // the current transaction's own counters
}

std::unordered_set<std::string> lowered(const std::vector<std::string>& names) {
  std::unordered_set<std::string> out;
  for (const auto& n : names) {
    out.insert(lower(n));
  }
  return out;
}

}  // namespace

const char* FunctionPolicy::volatile_functions_query() {
  return "SELECT DISTINCT proname::text FROM pg_catalog.pg_proc WHERE provolatile = 'v'";
}

FunctionPolicy::FunctionPolicy(const std::vector<std::string>& volatile_functions,
                               const std::vector<std::string>& read_only_functions,
                               const std::vector<std::string>& write_functions)
    : loaded_(true),
      volatile_(lowered(volatile_functions)),
      read_only_(lowered(read_only_functions)),
      write_(lowered(write_functions)) {}

FunctionPolicy FunctionPolicy::unloaded(const std::vector<std::string>& read_only_functions,
                                        const std::vector<std::string>& write_functions) {
  FunctionPolicy p({}, read_only_functions, write_functions);
  p.loaded_ = false;
  return p;
}

bool FunctionPolicy::must_run_on_primary(std::string_view function) const {
  const std::string name = lower(function);  // the parser lower-cases already; callers may not
  const std::string bare(bare_name(name));
  return write_.contains(name) || write_.contains(bare) || always_primary(bare);
}

bool FunctionPolicy::needs_primary(std::string_view function) const {
  if (must_run_on_primary(function)) {
    return true;
  }
  const std::string name = lower(function);
  const std::string bare(bare_name(name));
  if (read_only_.contains(name) || read_only_.contains(bare)) {
    return false;
  }
  if (harmless(bare)) {
    return false;
  }
  return !loaded_ || volatile_.contains(bare);
}

std::string_view FunctionPolicy::first_needing_primary(const std::vector<std::string>& functions,
                                                       bool hinted_replica) const {
  for (const auto& f : functions) {
    if (hinted_replica ? must_run_on_primary(f) : needs_primary(f)) {
      return f;
    }
  }
  return {};
}

}  // namespace router
