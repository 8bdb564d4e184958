#pragma once
// One libuv loop per worker thread. Owns deferred deletion (objects are never deleted
// inside their own callbacks) and a thread-safe queue of tasks posted from other threads.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

struct uv_loop_s;
struct uv_check_s;
struct uv_async_s;

namespace pooler::net {

// Anything handed to defer_delete().
class Deletable {
 public:
  virtual ~Deletable() = default;
};

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_s* raw() { return loop_; }

  // Runs until stop() or until no handles remain.
  void run();
  // Loop thread only.
  void stop();
  // Deletes `object` after the callbacks of the current iteration. Loop thread only.
  void defer_delete(std::unique_ptr<Deletable> object);
  // Runs `task` on the loop thread. Any thread.
  void post(std::function<void()> task);
  // Closes the loop's own handles; call after every other handle was closed.
  void close_internal_handles();

  // Shared read buffer for every stream of this loop: streams copy only the tail of an
  // incomplete message, so an idle connection owns no read buffer.
  static constexpr std::size_t kReadBufferSize = 64 * 1024;
  char* read_buffer() { return read_buffer_.get(); }

 private:
  void run_deferred();
  void run_posted();

  uv_loop_s* loop_;
  uv_check_s* check_;
  uv_async_s* async_;
  std::vector<std::unique_ptr<Deletable>> to_delete_;
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace pooler::net
