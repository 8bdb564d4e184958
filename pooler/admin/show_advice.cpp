#include "pooler/admin/show_advice.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

namespace pooler::admin {

namespace {

using Row = std::vector<std::optional<std::string>>;

std::string ms(double v) { return fmt::format("{:.3f}", v); }

}  // namespace

std::vector<advice::ShapeRow> merge_shapes(
    const std::vector<std::vector<advice::ShapeRow>>& by_worker) {
  std::vector<advice::ShapeRow> out;
  std::unordered_map<std::uint64_t, std::size_t> at;
  for (const auto& rows : by_worker) {
    for (const auto& r : rows) {
      auto [it, fresh] = at.try_emplace(r.key, out.size());
      if (fresh) {
        out.push_back(r);
        continue;
      }
      advice::ShapeRow& m = out[it->second];
      m.calls += r.calls;
      m.total_ns += r.total_ns;
      m.max_ns = std::max(m.max_ns, r.max_ns);
      m.rows += r.rows;
      m.errors += r.errors;
      m.primary += r.primary;
      m.replica += r.replica;
      m.first_seen_ms = std::min(m.first_seen_ms, r.first_seen_ms);
      m.last_seen_ms = std::max(m.last_seen_ms, r.last_seen_ms);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.calls > b.calls;
  });
  return out;
}

void overlay_live_counts(std::vector<advice::AdviceRecord>& records,
                         const std::vector<advice::ShapeRow>& merged_shapes) {
  std::unordered_map<std::uint64_t, const advice::ShapeRow*> by_key;
  for (const auto& s : merged_shapes) {
    by_key.emplace(s.key, &s);
  }
  for (auto& r : records) {
    auto it = by_key.find(advice::shape_key(r.database, r.fingerprint));
    if (it != by_key.end() && it->second->calls > r.calls) {
      r.calls = it->second->calls;
      r.total_time_ms = static_cast<double>(it->second->total_ns) / 1e6;
      r.last_seen_ms = std::max(r.last_seen_ms, it->second->last_seen_ms);
    }
  }
}

Table show_queries(const std::vector<advice::ShapeRow>& shapes) {
  Table t;
  for (const char* name :
       {"database", "fingerprint", "calls", "total_time_ms", "mean_time_ms", "max_time_ms", "rows",
        "errors", "primary", "replica", "first_seen", "last_seen", "query"}) {
    const std::string_view n(name);
    const bool text = n == "database" || n == "fingerprint" || n == "query" || n == "first_seen" ||
                      n == "last_seen" || n.ends_with("_ms");
    t.columns.push_back(Column{std::string(n), text ? kTextOid : kInt8Oid});
  }
  for (const auto& s : shapes) {
    const double total = static_cast<double>(s.total_ns) / 1e6;
    t.rows.push_back(Row{s.database, fmt::format("{:016x}", s.fingerprint), std::to_string(s.calls),
                         ms(total), ms(s.calls > 0 ? total / static_cast<double>(s.calls) : 0.0),
                         ms(static_cast<double>(s.max_ns) / 1e6), std::to_string(s.rows),
                         std::to_string(s.errors), std::to_string(s.primary),
                         std::to_string(s.replica), advice::iso8601_utc(s.first_seen_ms),
                         advice::iso8601_utc(s.last_seen_ms), s.query});
  }
  return t;
}

Table show_index_advice(const std::vector<advice::AdviceRecord>& records) {
  Table t;
  for (const char* name : {"database", "table", "columns", "ddl", "calls", "total_time_ms",
                           "mean_time_ms", "judged_by", "reason", "cost_before", "cost_after",
                           "table_rows", "table_pages", "first_seen", "last_seen", "query"}) {
    t.columns.push_back(Column{name, std::string_view(name) == "calls" ? kInt8Oid : kTextOid});
  }
  for (const auto& r : records) {
    std::string columns;
    for (const auto& c : r.columns) {
      columns += (columns.empty() ? "" : ", ") + c;
    }
    t.rows.push_back(
        Row{r.database, r.table, columns, r.ddl, std::to_string(r.calls), ms(r.total_time_ms),
            ms(r.calls > 0 ? r.total_time_ms / static_cast<double>(r.calls) : 0.0), r.judged_by,
            r.reason, fmt::format("{:.2f}", r.cost_before), fmt::format("{:.2f}", r.cost_after),
            fmt::format("{:.0f}", r.table_rows), fmt::format("{:.0f}", r.table_pages),
            advice::iso8601_utc(r.first_seen_ms), advice::iso8601_utc(r.last_seen_ms), r.query});
  }
  return t;
}

}  // namespace pooler::admin
