#include "pooler/net/fd_watcher.h"

#include <uv.h>

#include <string>

namespace pooler::net {

struct FdWatcher::Block {
  uv_poll_t poll{};
  FdWatcher* owner = nullptr;  // cleared on close; late callbacks see nullptr
};

FdWatcher::FdWatcher(Loop& loop, std::function<void(Result<int>)> on_ready)
    : loop_(loop), on_ready_(std::move(on_ready)) {}

FdWatcher::~FdWatcher() { close(); }

Result<void> FdWatcher::start(int fd, int events) {
  if (block_ != nullptr && fd != fd_) {
    close();
  }
  if (block_ == nullptr) {
    auto* block = new Block{};
    const int rc = uv_poll_init(loop_.raw(), &block->poll, fd);
    if (rc != 0) {
      delete block;  // never registered with the loop
      return fail(Errc::Io, std::string("uv_poll_init: ") + uv_strerror(rc));
    }
    block->owner = this;
    block->poll.data = block;
    block_ = block;
    fd_ = fd;
  }
  if (events == 0) {
    stop();
    return {};
  }
  int uv_events = 0;
  if ((events & kReadable) != 0) {
    uv_events |= UV_READABLE;
  }
  if ((events & kWritable) != 0) {
    uv_events |= UV_WRITABLE;
  }
  // Trampoline is noexcept: an exception must never unwind through libuv's C frames.
  const int rc = uv_poll_start(&block_->poll, uv_events, [](uv_poll_t* h, int status,
                                                              int ev) noexcept {
    auto* block = static_cast<Block*>(h->data);
    if (block->owner == nullptr) {
      return;
    }
    FdWatcher* self = block->owner;
    if (status < 0) {
      uv_poll_stop(h);
      self->on_ready_(fail(Errc::Io, std::string("poll: ") + uv_strerror(status)));
      return;  // `block` may be closed now: do not touch it
    }
    int out = 0;
    if ((ev & (UV_READABLE | UV_DISCONNECT)) != 0) {
      out |= kReadable;  // a hang-up is read as EOF by the fd's owner
    }
    if ((ev & UV_WRITABLE) != 0) {
      out |= kWritable;
    }
    self->on_ready_(out);
  });
  if (rc != 0) {
    return fail(Errc::Io, std::string("uv_poll_start: ") + uv_strerror(rc));
  }
  return {};
}

void FdWatcher::stop() {
  if (block_ != nullptr) {
    uv_poll_stop(&block_->poll);
  }
}

void FdWatcher::close() {
  if (block_ == nullptr) {
    return;
  }
  block_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&block_->poll),
           [](uv_handle_t* h) { delete static_cast<Block*>(h->data); });  // the only delete
  block_ = nullptr;
  fd_ = -1;
}

}  // namespace pooler::net
