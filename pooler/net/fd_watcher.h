#pragma once
// Readiness of a file descriptor that someone else owns and reads/writes (libpq's socket),
// over a uv_poll_t. Loop thread only.
//
// Lifetime rules (as Timer and TcpStream): the uv handle lives in a heap block freed in its
// close callback; close() clears the block's owner, so a callback that libuv delivers late
// is dropped. The FdWatcher object itself may be destroyed at any time except from inside its
// own callback (its std::function would be running); close() and start() are fine there.
//
// The descriptor: call close() BEFORE the fd is closed by its owner (e.g. before PQfinish);
// libuv removes the fd from epoll at close() time, so closing the fd right after is safe.
// If the owner may have replaced the socket behind the same fd number (libpq does while
// connecting), call close() and then start() again: a new handle registers the new socket.

#include <functional>

#include "pooler/base/result.h"
#include "pooler/net/loop.h"

namespace pooler::net {

class FdWatcher {
 public:
  static constexpr int kReadable = 1;
  static constexpr int kWritable = 2;

  // `on_ready(events)`: the kReadable/kWritable events that fired; an error when polling
  // failed (the watch is stopped then).
  FdWatcher(Loop& loop, std::function<void(Result<int> events)> on_ready);
  ~FdWatcher();
  FdWatcher(const FdWatcher&) = delete;
  FdWatcher& operator=(const FdWatcher&) = delete;

  // Watches `fd` for `events` (a mix of kReadable/kWritable; 0 = stop()). The same fd as
  // the current watch changes the events; another fd closes the current handle first.
  [[nodiscard]] Result<void> start(int fd, int events);
  // Stops reporting but keeps the handle (and the fd's registration) for a later start().
  void stop();
  // Releases the handle; the fd may be closed right after. Idempotent.
  void close();

  bool is_open() const { return block_ != nullptr; }
  int fd() const { return fd_; }

 private:
  struct Block;
  Loop& loop_;
  Block* block_ = nullptr;
  int fd_ = -1;
  std::function<void(Result<int>)> on_ready_;
};

}  // namespace pooler::net
