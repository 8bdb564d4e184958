#pragma once
// The client requests on a leased backend whose per-shape statistics are being timed, in
// the order they were sent. A simple Query ends at its ReadyForQuery; an extended-protocol
// request (counted at its Bind) at the ReadyForQuery of the Sync after it. At most
// kCapacity are timed at once: deeper pipelines are counted (by the caller) but not timed.
// Opaque to the backend: `slot` and `key` belong to the worker's advice::ShapeStats.

#include <array>
#include <charconv>
#include <cstdint>
#include <string_view>

namespace pooler::backend {

class RequestTimer {
 public:
  struct Entry {
    std::uint64_t key = 0;
    std::uint64_t start_ns = 0;
    std::uint64_t rows = 0;
    std::uint32_t slot = 0;
    bool ends_at_ready = false;  // a simple Query: every CommandComplete until Z is its own
    bool error = false;
  };
  static constexpr std::uint8_t kCapacity = 4;

  void start(std::uint32_t slot, std::uint64_t key, std::uint64_t start_ns, bool ends_at_ready) {
    if (count_ == kCapacity) {
      return;
    }
    Entry& e = entries_[(head_ + count_) % kCapacity];
    e = Entry{key, start_ns, 0, slot, ends_at_ready, false};
    ++count_;
  }

  // A CommandComplete the client sees: its rows go to the request it ends.
  void on_command_complete(std::string_view tag) {
    if (completed_ >= count_) {
      return;
    }
    Entry& e = entries_[(head_ + completed_) % kCapacity];
    e.rows += rows_of(tag);
    if (!e.ends_at_ready) {
      ++completed_;
    }
  }

  // An ErrorResponse the client sees: the oldest unfinished request failed.
  void on_error() {
    if (completed_ < count_) {
      entries_[(head_ + completed_) % kCapacity].error = true;
    }
  }

  // A ReadyForQuery the client sees: calls done(entry) for each request it ends.
  template <typename Done>
  void on_ready(Done&& done) {
    while (count_ > 0) {
      const Entry e = entries_[head_];
      head_ = static_cast<std::uint8_t>((head_ + 1) % kCapacity);
      --count_;
      completed_ = completed_ > 0 ? static_cast<std::uint8_t>(completed_ - 1) : 0;
      done(e);
      if (e.ends_at_ready) {
        break;
      }
    }
  }

  void clear() { head_ = count_ = completed_ = 0; }
  bool empty() const { return count_ == 0; }

  // The row count at the end of a tag ("SELECT 5", "INSERT 0 5", "UPDATE 3"); 0 if none.
  static std::uint64_t rows_of(std::string_view tag) {
    const auto space = tag.rfind(' ');
    if (space == std::string_view::npos) {
      return 0;
    }
    std::uint64_t n = 0;
    const char* begin = tag.data() + space + 1;
    const char* end = tag.data() + tag.size();
    auto [ptr, ec] = std::from_chars(begin, end, n);
    return ec == std::errc() && ptr == end ? n : 0;
  }

 private:
  std::array<Entry, kCapacity> entries_{};
  std::uint8_t head_ = 0;
  std::uint8_t count_ = 0;
  std::uint8_t completed_ = 0;  // entries (from head) whose CommandComplete arrived
};

}  // namespace pooler::backend
