#include "router/lsn.h"

#include <charconv>
#include <cstdio>

namespace router {
namespace {

std::optional<std::uint32_t> hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) {
    return std::nullopt;
  }
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  const auto hi = hex32(text.substr(0, slash));
  const auto lo = hex32(text.substr(slash + 1));
  if (!hi || !lo) {
    return std::nullopt;
  }
  return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

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
