#include "pooler/advice/shape_stats.h"

#include <algorithm>

#include "parser/query_shape.h"

namespace pooler::advice {

std::uint64_t shape_key(std::string_view database, std::uint64_t fingerprint) {
  return parser::hash_key(database, fingerprint);
}

ShapeStats::ShapeStats(Options options) : options_(options) {
  rows_.reserve(std::min<std::size_t>(options_.capacity, 1024));
}

std::uint32_t ShapeStats::insert(std::uint64_t key, std::uint64_t fingerprint,
                                 std::string_view database, std::string_view query,
                                 std::uint64_t now_ms) {
  std::uint32_t slot = 0;
  if (rows_.size() < std::max<std::size_t>(options_.capacity, 1)) {
    slot = static_cast<std::uint32_t>(rows_.size());
    rows_.emplace_back();
  } else {
    slot = victim();
    index_.erase(rows_[slot].key);
    ++evictions_;
  }
  ShapeRow& r = rows_[slot];
  r = ShapeRow{};
  r.key = key;
  r.fingerprint = fingerprint;
  r.database.assign(database);
  r.query.assign(query);
  r.first_seen_ms = now_ms;
  r.last_seen_ms = now_ms;
  index_.insert_or_assign(key, slot);
  return slot;
}

bool ShapeStats::take_sample_turn(std::uint32_t slot, std::uint64_t now_ms) {
  ShapeRow& r = rows_[slot];
  if (!options_.sampling || now_ms < r.next_sample_ms) {
    return false;
  }
  const bool slow = options_.min_duration_ns > 0 && r.max_ns >= options_.min_duration_ns;
  if (r.calls < options_.min_calls && !slow) {
    return false;
  }
  r.next_sample_ms = now_ms + options_.recheck_ms;
  return true;
}

void ShapeStats::finish(std::uint32_t slot, std::uint64_t key, std::uint64_t elapsed_ns,
                        std::uint64_t rows, bool error) {
  if (slot >= rows_.size() || rows_[slot].key != key) {
    return;
  }
  ShapeRow& r = rows_[slot];
  r.total_ns += elapsed_ns;
  r.max_ns = std::max(r.max_ns, elapsed_ns);
  r.rows += rows;
  r.errors += error ? 1 : 0;
}

std::vector<ShapeRow> ShapeStats::snapshot(std::int64_t wall_offset_ms) const {
  std::vector<ShapeRow> out;
  out.reserve(index_.size());
  for (const ShapeRow& r : rows_) {
    if (r.key == 0 && r.calls == 0) {
      continue;
    }
    ShapeRow copy = r;
    copy.first_seen_ms =
        static_cast<std::uint64_t>(static_cast<std::int64_t>(r.first_seen_ms) + wall_offset_ms);
    copy.last_seen_ms =
        static_cast<std::uint64_t>(static_cast<std::int64_t>(r.last_seen_ms) + wall_offset_ms);
    out.push_back(std::move(copy));
  }
  return out;
}

// The least called of the next few slots (CLOCK-like hand): cheap, and a frequent shape
// survives a burst of one-off queries.
std::uint32_t ShapeStats::victim() {
  constexpr std::size_t kCandidates = 8;
  std::uint32_t best = static_cast<std::uint32_t>(hand_ % rows_.size());
  for (std::size_t i = 0; i < kCandidates; ++i) {
    const auto at = static_cast<std::uint32_t>((hand_ + i) % rows_.size());
    if (rows_[at].calls < rows_[best].calls) {
      best = at;
    }
  }
  hand_ = (hand_ + kCandidates) % rows_.size();
  return best;
}

}  // namespace pooler::advice
