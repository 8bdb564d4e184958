#include "pooler/net/loop.h"

#include <uv.h>

#include "pooler/base/check.h"

namespace pooler::net {

Loop::Loop()
    : loop_(new uv_loop_t{}),
      check_(new uv_check_t{}),
      async_(new uv_async_t{}),
      read_buffer_(new char[kReadBufferSize]) {
  POOLER_CHECK(uv_loop_init(loop_) == 0, "uv_loop_init");
  uv_check_init(loop_, check_);
  check_->data = this;
  uv_check_start(check_, [](uv_check_t* h) { static_cast<Loop*>(h->data)->run_deferred(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  uv_async_init(loop_, async_, [](uv_async_t* h) { static_cast<Loop*>(h->data)->run_posted(); });
  async_->data = this;
}

Loop::~Loop() {
  to_delete_.clear();
  // Let close callbacks of handles closed during teardown run.
  uv_run(loop_, UV_RUN_NOWAIT);
  uv_loop_close(loop_);
  delete check_;
  delete async_;
  delete loop_;
}

void Loop::close_internal_handles() {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(check_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(check_), nullptr);
  }
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(async_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(async_), nullptr);
  }
}

void Loop::run() { uv_run(loop_, UV_RUN_DEFAULT); }

void Loop::stop() { uv_stop(loop_); }

void Loop::defer_delete(std::unique_ptr<Deletable> object) {
  to_delete_.push_back(std::move(object));
}

void Loop::run_deferred() {
  // Deleting may defer more deletions: loop until quiet.
  while (!to_delete_.empty()) {
    auto batch = std::move(to_delete_);
    to_delete_.clear();
    batch.clear();
  }
}

void Loop::post(std::function<void()> task) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(task));
  }
  uv_async_send(async_);
}

void Loop::run_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mutex_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) {
    task();
  }
  run_deferred();
}

}  // namespace pooler::net
