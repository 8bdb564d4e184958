#pragma once
// One real execution of a query shape, taken on a worker and judged by the index advisor
// on its own thread. Carries the literal values or parameters of that execution: they are
// used for EXPLAIN only and never stored or logged.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace pooler::advice {

struct Sample {
  std::string database;   // client-visible name
  std::string user;       // the client's user
  std::uint64_t key = 0;  // shape_key(database, fingerprint)
  std::uint64_t fingerprint = 0;
  std::string query;  // normalized text, for the record
  std::string sql;    // the text as executed: literals, or $n with `params`
  std::vector<std::optional<std::string>> params;  // raw values (nullopt = NULL)
  std::vector<std::uint32_t> param_types;          // OIDs (0 = unspecified)
  std::vector<int> param_formats;                  // 0 text, 1 binary; one per param
  std::string search_path_sql;  // the statement that gives the client's search_path, or ""
  // The shape's statistics on the worker that took the sample.
  int worker = 0;
  std::uint64_t calls = 0;
  std::uint64_t total_ns = 0;
  std::uint64_t first_seen_ms = 0;  // wall clock, ms since the epoch
  std::uint64_t last_seen_ms = 0;
};

// Bounded and shared by every worker (producers) and the advisor (consumer). A full queue
// drops the sample: a query is never delayed for advice.
class SampleQueue {
 public:
  explicit SampleQueue(std::size_t capacity) : capacity_(capacity) {}

  bool try_push(Sample&& sample) {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || queue_.size() >= capacity_) {
        ++dropped_;
        return false;
      }
      queue_.push_back(std::move(sample));
    }
    ready_.notify_one();
    return true;
  }

  // Waits up to `timeout`; nullopt on timeout or once closed.
  std::optional<Sample> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, timeout, [this] { return closed_ || !queue_.empty(); });
    if (closed_ || queue_.empty()) {
      return std::nullopt;
    }
    Sample s = std::move(queue_.front());
    queue_.pop_front();
    return s;
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  void set_capacity(std::size_t capacity) {
    std::lock_guard lock(mutex_);
    capacity_ = capacity;
  }

  std::uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Sample> queue_;
  std::size_t capacity_;
  std::uint64_t dropped_ = 0;
  bool closed_ = false;
};

}  // namespace pooler::advice
