#pragma once
// The clients waiting for one pool's backend, first come first served. The queue, not the
// client, holds the bookkeeping (when each began to wait), so an idle client carries none
// of it, and a wait costs no allocation of its own (a deque allocates once per 32 waits).
// A client that stops waiting leaves a hole, skipped and dropped when it reaches the front.
// Loop thread only.

#include <cstdint>
#include <deque>
#include <vector>

namespace pooler::backend {

template <typename Waiter>
class WaitQueue {
 public:
  struct Entry {
    Waiter* waiter = nullptr;  // null: it stopped waiting
    std::uint64_t since_us = 0;  // monotonic (net::now_ns() / 1000): waits are often < 1 ms
  };

  bool empty() const { return live_ == 0; }
  std::size_t size() const { return live_; }

  void push(Waiter* waiter, std::uint64_t now_us) {
    entries_.push_back(Entry{waiter, now_us});
    ++live_;
  }

  // Only while !empty().
  const Entry& front() const { return entries_.front(); }

  // The wait of the first waiter so far, in ms; 0 when none waits.
  std::uint64_t longest_wait_ms(std::uint64_t now_us) const {
    return empty() || now_us < front().since_us ? 0 : (now_us - front().since_us) / 1000;
  }

  Entry pop_front() {
    Entry e = entries_.front();
    entries_.pop_front();
    --live_;
    drop_holes();
    return e;
  }

  // Linear, but only a client leaving while it waits (a disconnect, a cancel) pays it.
  void remove(const Waiter* waiter) {
    for (Entry& e : entries_) {
      if (e.waiter == waiter) {
        e.waiter = nullptr;
        --live_;
        drop_holes();
        return;
      }
    }
  }

  // Empties the queue, returning the waiters in order.
  std::vector<Waiter*> take_all() {
    std::vector<Waiter*> out;
    out.reserve(live_);
    for (const Entry& e : entries_) {
      if (e.waiter != nullptr) {
        out.push_back(e.waiter);
      }
    }
    entries_.clear();
    live_ = 0;
    return out;
  }

 private:
  void drop_holes() {
    while (!entries_.empty() && entries_.front().waiter == nullptr) {
      entries_.pop_front();
    }
  }

  std::deque<Entry> entries_;
  std::size_t live_ = 0;
};

}  // namespace pooler::backend
