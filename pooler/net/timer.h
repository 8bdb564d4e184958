#pragma once
// A libuv timer owned by one object; the handle is freed in its close callback, so the
// Timer may be destroyed at any time. Loop thread only.

#include <chrono>
#include <functional>

#include "pooler/net/loop.h"

namespace pooler::net {

class Timer {
 public:
  Timer(Loop& loop, std::function<void()> on_fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // First after `delay`, then every `repeat` (zero = once).
  void start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat = {});
  void stop();
  // A timer that should not keep the loop alive (periodic housekeeping).
  void unref();

 private:
  struct Block;
  Block* block_;
  std::function<void()> on_fire_;
};

// Milliseconds from libuv's cached loop clock (cheap: no system call).
std::uint64_t now_ms(Loop& loop);
// Monotonic nanoseconds (a real clock read).
std::uint64_t now_ns();
// What to add to a now_ms(loop) instant to get wall-clock ms since the epoch.
std::int64_t wall_offset_ms(Loop& loop);

}  // namespace pooler::net
