#pragma once
// Per-shape statistics of one worker: for each query shape (database + fingerprint, the
// normalized text with $n for literals) calls, time, rows, errors and where they ran.
// Loop thread only; SHOW QUERIES and /metrics read snapshots gathered through the loop.
//
// Bounded: at most `capacity` shapes; a new shape evicts the least called of a few
// candidates. On the query path a call costs one hash lookup (find), one count
// and one update (finish), with the loop's cached clock and one clock read for the duration.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pooler::advice {

struct ShapeRow {
  std::uint64_t key = 0;  // shape_key(database, fingerprint)
  std::uint64_t fingerprint = 0;
  std::string database;  // the client-visible name
  std::string query;     // normalized text
  std::uint64_t calls = 0;
  std::uint64_t total_ns = 0;  // as seen by pgmux: request sent to ReadyForQuery
  std::uint64_t max_ns = 0;
  std::uint64_t rows = 0;  // from CommandComplete tags
  std::uint64_t errors = 0;
  std::uint64_t primary = 0;        // calls that ran on the primary ...
  std::uint64_t replica = 0;        // ... and on a replica
  std::uint64_t first_seen_ms = 0;  // loop clock (ShapeStats) or wall clock (snapshots)
  std::uint64_t last_seen_ms = 0;
  std::uint64_t next_sample_ms = 0;  // loop clock: when it may be sampled again
};

// The key of a shape: its fingerprint, told apart per database.
std::uint64_t shape_key(std::string_view database, std::uint64_t fingerprint);

class ShapeStats {
 public:
  struct Options {
    std::size_t capacity = 5000;
    bool sampling = false;               // index advice on: hand out sample turns
    std::uint64_t min_calls = 20;        // a shape this frequent is sampled ...
    std::uint64_t min_duration_ns = 0;   // ... or one whose slowest call took this long
    std::uint64_t recheck_ms = 600'000;  // at most one sample per shape per interval
  };

  explicit ShapeStats(Options options);
  void set_options(const Options& options) { options_ = options; }
  const Options& options() const { return options_; }

  // The slot of a known shape, or -1.
  std::int64_t find(std::uint64_t key) const {
    auto it = index_.find(key);
    return it == index_.end() ? -1 : static_cast<std::int64_t>(it->second);
  }
  // A new shape's slot (evicting the least called of a few when full).
  std::uint32_t insert(std::uint64_t key, std::uint64_t fingerprint, std::string_view database,
                       std::string_view query, std::uint64_t now_ms);
  // One call of the shape in `slot`, routed as `replica` says.
  void count(std::uint32_t slot, bool replica, std::uint64_t now_ms) {
    ShapeRow& r = rows_[slot];
    ++r.calls;
    ++(replica ? r.replica : r.primary);
    r.last_seen_ms = now_ms;
  }
  // True at most once per recheck interval, for a shape frequent or slow enough to judge.
  bool take_sample_turn(std::uint32_t slot, std::uint64_t now_ms);
  // The end of a counted call; ignored if the slot went to another shape since.
  void finish(std::uint32_t slot, std::uint64_t key, std::uint64_t elapsed_ns, std::uint64_t rows,
              bool error);

  const ShapeRow& row(std::uint32_t slot) const { return rows_[slot]; }
  // Every shape, times converted to the wall clock: wall = loop + `wall_offset_ms`.
  std::vector<ShapeRow> snapshot(std::int64_t wall_offset_ms) const;
  std::size_t size() const { return index_.size(); }
  std::uint64_t evictions() const { return evictions_; }

 private:
  std::uint32_t victim();

  Options options_;
  std::vector<ShapeRow> rows_;
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  std::size_t hand_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace pooler::advice
