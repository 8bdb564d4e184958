#pragma once
// The analyses of recent query shapes, so that each shape is parsed once.
//
// One per worker, used on its loop thread only (not thread-safe). Bounded: CLOCK eviction
// (second chance), `capacity` entries.
//
// Keys: for the extended protocol (a Parse message) the statement text as sent; for the
// simple protocol the literal-free key of scan_shape(), so `WHERE id = 7` and
// `WHERE id = 8` share one entry. The two kinds of key never match each other.
//
// On a miss:
//   - text longer than max_sql_bytes is not parsed (a parse of a huge statement would stall
//     the loop): a shallow analysis with read_only = false (so: primary), the kind from its
//     first keyword when fast_classify knows it, Other otherwise; not cached.
//   - with fast_classify on, a single statement that obviously writes (INSERT, UPDATE,
//     DELETE, MERGE, DDL, COPY ... FROM) gets a shallow analysis without a parse;
//   - anything else is analysed with analyze(); parse errors (and analyze() failures,
//     reported as parse errors) are returned but not cached, so a malformed query never
//     stands in for a valid one of the same shape.

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "parser/statement.h"

namespace parser {

class AnalysisCache {
 public:
  struct Options {
    std::size_t capacity = 4096;            // entries; 0 disables caching
    std::size_t max_sql_bytes = 32 * 1024;  // longer texts are not parsed
    bool fast_classify = true;              // obvious writes skip the parse
  };

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t parses = 0;           // misses analysed with libpg_query
    std::uint64_t fast_classified = 0;  // misses answered by fast_classify
    std::uint64_t uncached = 0;         // misses not stored (too long, parse error)
    std::uint64_t evictions = 0;
  };

  AnalysisCache() : AnalysisCache(Options{}) {}
  explicit AnalysisCache(Options options);
  AnalysisCache(const AnalysisCache&) = delete;
  AnalysisCache& operator=(const AnalysisCache&) = delete;

  // The analysis of `sql` (extended: the text of a Parse message; otherwise a Query).
  // The reference is valid until the next get() or clear(): copy what must outlive it
  // (for a Parse, keep the route, not the analysis).
  const Analysis& get(std::string_view sql, bool extended);

  std::uint64_t hits() const { return stats_.hits; }
  std::uint64_t misses() const { return stats_.misses; }
  const Stats& stats() const { return stats_; }
  std::size_t size() const { return index_.size(); }
  std::size_t capacity() const { return options_.capacity; }
  void clear();

 private:
  // A key as stored in the index: it points into its slot's `key` (or, while looking up,
  // into the caller's text or key_).
  struct KeyRef {
    std::string_view text;
    std::uint64_t hash = 0;
    bool extended = false;
  };
  struct KeyHash {
    std::size_t operator()(const KeyRef& k) const { return k.hash; }
  };
  struct KeyEqual {
    bool operator()(const KeyRef& a, const KeyRef& b) const {
      return a.hash == b.hash && a.extended == b.extended && a.text == b.text;
    }
  };
  struct Slot {
    std::string key;
    std::uint64_t hash = 0;
    bool extended = false;
    bool referenced = false;  // CLOCK: used since the hand last passed
    Analysis analysis;
  };

  Analysis analyze_miss(std::string_view sql, const std::string& literal_free);
  const Analysis& uncached(Analysis analysis);
  const Analysis& insert(const KeyRef& key, Analysis analysis);
  std::size_t victim();
  void remember(std::string_view sql, bool extended, const Analysis& analysis);

  Options options_;
  Stats stats_;
  std::deque<Slot> slots_;  // grows to capacity at the back: slots never move
  std::unordered_map<KeyRef, std::uint32_t, KeyHash, KeyEqual> index_;
  std::size_t hand_ = 0;
  std::string key_;      // scratch: the simple-protocol key
  std::string scratch_;  // scratch: the literal-free text of an extended-protocol miss
  Analysis last_uncached_;
  // The last text answered from (or put in) the cache, and its slot's analysis.
  std::string last_text_;
  bool last_extended_ = false;
  const Analysis* last_ = nullptr;
};

}  // namespace parser
