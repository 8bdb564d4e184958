#include "router/lsn.h"

#include "pooler/base/lsn.h"

#include <charconv>
#include <cstdio>

namespace router {
std::optional<std::uint64_t> parse_lsn(std::string_view text) { return pooler::parse_lsn(text); }

std::string format_lsn(std::uint64_t lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return buf;
}

bool replica_caught_up(std::uint64_t replica_replay_lsn, std::uint64_t commit_lsn) {
  return replica_replay_lsn != 0 && replica_replay_lsn >= commit_lsn;
}

std::int64_t lag_bytes(std::uint64_t primary_lsn, std::uint64_t replica_replay_lsn) {
  return primary_lsn > replica_replay_lsn
             ? static_cast<std::int64_t>(primary_lsn - replica_replay_lsn)
             : 0;
}

}  // namespace router
