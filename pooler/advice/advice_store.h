#pragma once
// The index-advice records: what SHOW INDEX_ADVICE, /metrics and /index_advice show, and
// the JSON-lines file (one object per line, appended when a record is created or
// changes). Thread-safe: the advisor writes, the admin and HTTP threads read.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace pooler::advice {

struct AdviceRecord {
  std::string database;
  std::uint64_t fingerprint = 0;
  std::string query;                 // normalized: never a literal value
  std::string table;                 // "schema.name"
  std::vector<std::string> columns;  // the proposed index's key columns, in order
  std::string ddl;
  std::string reason;     // "filter" or "sort"
  std::string plan_node;  // "Seq Scan"
  double plan_rows = 0;   // the node's estimated rows
  double table_rows = 0;
  double table_pages = 0;
  double cost_before = 0;  // the plan's total cost
  double cost_after = 0;   // with the index: hypopg's plan, or pgmux's estimate
  std::string judged_by;   // "hypopg" or "estimate"
  std::uint64_t calls = 0;
  double total_time_ms = 0;
  std::uint64_t first_seen_ms = 0;  // wall clock
  std::uint64_t last_seen_ms = 0;

  bool same_advice(const AdviceRecord& o) const {
    return table == o.table && columns == o.columns && judged_by == o.judged_by;
  }
};

// One JSON object, no newline.
std::string to_json(const AdviceRecord& record);
// "2026-11-26T15:04:05.123Z"
std::string iso8601_utc(std::uint64_t ms_since_epoch);

class AdviceStore {
 public:
  // `file` empty: records are kept in memory only.
  explicit AdviceStore(std::string file = {});

  enum class Change : std::uint8_t { None, Created, Updated };
  // Adds or replaces the record of (database, fingerprint); appends a line unless nothing
  // changed.
  Change upsert(const AdviceRecord& record);
  // Updates the counters of an existing record (appends a line when they moved).
  void update_counts(const std::string& database, std::uint64_t fingerprint, std::uint64_t calls,
                     double total_time_ms, std::uint64_t last_seen_ms);
  // The record judged no longer needed (an index was created since): removed.
  void remove(const std::string& database, std::uint64_t fingerprint);
  std::optional<AdviceRecord> find(const std::string& database, std::uint64_t fingerprint) const;
  std::vector<AdviceRecord> records() const;
  std::size_t size() const;
  void set_file(std::string file);
  std::uint64_t write_errors() const;

 private:
  void append(const AdviceRecord& record);  // mutex held

  mutable std::mutex mutex_;
  std::string file_;
  std::vector<AdviceRecord> records_;
  std::uint64_t write_errors_ = 0;
  bool write_error_logged_ = false;
};

}  // namespace pooler::advice
