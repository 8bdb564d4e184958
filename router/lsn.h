#pragma once
// PostgreSQL WAL positions (pg_lsn) as the health checks and read-your-writes use them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace router {

// "16/B374D848" (pg_lsn's text form: two hex numbers of 1-8 digits) -> 0x16B374D848.
std::optional<std::uint64_t> parse_lsn(std::string_view text);

// 0x16B374D848 -> "16/B374D848".
std::string format_lsn(std::uint64_t lsn);

// Whether a replica that has replayed up to `replica_replay_lsn` shows the transaction that
// committed at `commit_lsn` (the position pg_current_wal_lsn() returned after the commit).
// An unknown replay position (0) has caught up with nothing.
bool replica_caught_up(std::uint64_t replica_replay_lsn, std::uint64_t commit_lsn);

// Bytes a replica is behind (0 when ahead, as right after a check races a commit).
std::int64_t lag_bytes(std::uint64_t primary_lsn, std::uint64_t replica_replay_lsn);

}  // namespace router
