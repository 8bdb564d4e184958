#include "pooler/net/timer.h"

#include <uv.h>

#include <chrono>

namespace pooler::net {

struct Timer::Block {
  uv_timer_t timer{};
  Timer* owner = nullptr;
};

Timer::Timer(Loop& loop, std::function<void()> on_fire)
    : block_(new Block{}), on_fire_(std::move(on_fire)) {
  block_->owner = this;
  uv_timer_init(loop.raw(), &block_->timer);
  block_->timer.data = block_;
}

Timer::~Timer() {
  block_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&block_->timer),
           [](uv_handle_t* h) { delete static_cast<Block*>(h->data); });
}

void Timer::start(std::chrono::milliseconds delay, std::chrono::milliseconds repeat) {
  uv_timer_start(
      &block_->timer,
      [](uv_timer_t* t) {
        auto* block = static_cast<Block*>(t->data);
        if (block->owner != nullptr) {
          block->owner->on_fire_();
        }
      },
      static_cast<std::uint64_t>(delay.count()), static_cast<std::uint64_t>(repeat.count()));
}

void Timer::stop() { uv_timer_stop(&block_->timer); }

void Timer::unref() { uv_unref(reinterpret_cast<uv_handle_t*>(&block_->timer)); }

std::uint64_t now_ms(Loop& loop) { return uv_now(loop.raw()); }

std::uint64_t now_ns() { return uv_hrtime(); }

std::int64_t wall_offset_ms(Loop& loop) {
  const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  return static_cast<std::int64_t>(wall) - static_cast<std::int64_t>(now_ms(loop));
}

}  // namespace pooler::net
