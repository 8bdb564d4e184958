#include "pooler/advice/advice_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "pooler/base/log.h"

namespace pooler::advice {

std::string iso8601_utc(std::uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

std::string to_json(const AdviceRecord& r) {
  std::string columns;
  for (const auto& c : r.columns) {
    columns += fmt::format("{}\"{}\"", columns.empty() ? "" : ",", log::json_escape(c));
  }
  const double mean = r.calls > 0 ? r.total_time_ms / static_cast<double>(r.calls) : 0.0;
  return fmt::format(
      "{{\"query\":\"{}\",\"database\":\"{}\",\"fingerprint\":\"{:016x}\",\"table\":\"{}\","
      "\"columns\":[{}],\"ddl\":\"{}\",\"reason\":\"{}\",\"plan_node\":\"{}\",\"plan_rows\":{:.0f},"
      "\"table_rows\":{:.0f},\"table_pages\":{:.0f},\"cost_before\":{:.2f},\"cost_after\":{:.2f},"
      "\"judged_by\":\"{}\",\"calls\":{},\"total_time_ms\":{:.3f},\"mean_time_ms\":{:.3f},"
      "\"first_seen\":\"{}\",\"last_seen\":\"{}\"}}",
      log::json_escape(r.query), log::json_escape(r.database), r.fingerprint,
      log::json_escape(r.table), columns, log::json_escape(r.ddl), r.reason,
      log::json_escape(r.plan_node), r.plan_rows, r.table_rows, r.table_pages, r.cost_before,
      r.cost_after, r.judged_by, r.calls, r.total_time_ms, mean, iso8601_utc(r.first_seen_ms),
      iso8601_utc(r.last_seen_ms));
}

AdviceStore::AdviceStore(std::string file) : file_(std::move(file)) {}

AdviceStore::Change AdviceStore::upsert(const AdviceRecord& record) {
  std::lock_guard lock(mutex_);
  for (AdviceRecord& r : records_) {
    if (r.database == record.database && r.fingerprint == record.fingerprint) {
      const bool changed = !r.same_advice(record) || r.calls != record.calls;
      const std::uint64_t first = r.first_seen_ms;
      r = record;
      r.first_seen_ms = std::min(first, record.first_seen_ms);
      if (changed) {
        append(r);
      }
      return changed ? Change::Updated : Change::None;
    }
  }
  records_.push_back(record);
  append(record);
  return Change::Created;
}

void AdviceStore::update_counts(const std::string& database, std::uint64_t fingerprint,
                                std::uint64_t calls, double total_time_ms,
                                std::uint64_t last_seen_ms) {
  std::lock_guard lock(mutex_);
  for (AdviceRecord& r : records_) {
    if (r.database == database && r.fingerprint == fingerprint) {
      if (r.calls != calls) {
        r.calls = calls;
        r.total_time_ms = total_time_ms;
        r.last_seen_ms = std::max(r.last_seen_ms, last_seen_ms);
        append(r);
      }
      return;
    }
  }
}

void AdviceStore::remove(const std::string& database, std::uint64_t fingerprint) {
  std::lock_guard lock(mutex_);
  std::erase_if(records_, [&](const AdviceRecord& r) {
    return r.database == database && r.fingerprint == fingerprint;
  });
}

std::optional<AdviceRecord> AdviceStore::find(const std::string& database,
                                              std::uint64_t fingerprint) const {
  std::lock_guard lock(mutex_);
  for (const AdviceRecord& r : records_) {
    if (r.database == database && r.fingerprint == fingerprint) {
      return r;
    }
  }
  return std::nullopt;
}

std::vector<AdviceRecord> AdviceStore::records() const {
  std::lock_guard lock(mutex_);
  return records_;
}

std::size_t AdviceStore::size() const {
  std::lock_guard lock(mutex_);
  return records_.size();
}

void AdviceStore::set_file(std::string file) {
  std::lock_guard lock(mutex_);
  file_ = std::move(file);
  write_error_logged_ = false;
}

std::uint64_t AdviceStore::write_errors() const {
  std::lock_guard lock(mutex_);
  return write_errors_;
}

// Open, append, close: rare (a record per shape and interval), and a rotated or deleted
// file is simply created again.
void AdviceStore::append(const AdviceRecord& record) {
  if (file_.empty()) {
    return;
  }
  const std::string line = to_json(record) + "\n";
  std::FILE* f = std::fopen(file_.c_str(), "a");
  bool ok = f != nullptr;
  int error = ok ? 0 : errno;
  if (ok) {
    ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
    error = ok ? 0 : errno;
    ok = std::fclose(f) == 0 && ok;
  }
  if (!ok) {
    ++write_errors_;
    if (!write_error_logged_) {
      write_error_logged_ = true;
      spdlog::error("index advice: cannot append to {}: {}", file_, std::strerror(error));
    }
  }
}

}  // namespace pooler::advice
