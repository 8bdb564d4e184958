// FdWatcher over a socketpair on a real libuv loop (no network, no PostgreSQL).

#include "pooler/net/fd_watcher.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "pooler/net/loop.h"
#include "pooler/net/timer.h"

namespace pooler::net {
namespace {

using namespace std::chrono_literals;

class FdWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
  // Runs the loop until something calls loop_.stop(), or 2 s.
  void run() {
    Timer guard(loop_, [this] { loop_.stop(); });
    guard.start(2000ms);
    loop_.run();
  }
  void finish() { loop_.close_internal_handles(); }

  Loop loop_;
  int fds_[2] = {-1, -1};
};

// Data written to the peer makes the fd readable, reported once per loop wake-up.
TEST_F(FdWatcherTest, ReportsReadable) {
  std::vector<int> seen;
  {
    FdWatcher w(loop_, [&](Result<int> ev) {
      ASSERT_TRUE(ev.has_value());
      seen.push_back(*ev);
      loop_.stop();
    });
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kReadable).has_value());
    EXPECT_EQ(w.fd(), fds_[0]);
    ASSERT_EQ(::write(fds_[1], "x", 1), 1);
    run();
  }
  finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], FdWatcher::kReadable);
}

// An empty socket buffer is writable at once; start() with other events changes the watch.
TEST_F(FdWatcherTest, ReportsWritableAndChangesEvents) {
  std::vector<int> seen;
  {
    FdWatcher w(loop_, [&](Result<int> ev) {
      ASSERT_TRUE(ev.has_value());
      seen.push_back(*ev);
      loop_.stop();
    });
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kWritable).has_value());
    run();
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kReadable).has_value());  // nothing to read yet
    ASSERT_EQ(::write(fds_[1], "x", 1), 1);
    run();
  }
  finish();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], FdWatcher::kWritable);
  EXPECT_EQ(seen[1], FdWatcher::kReadable);
}

// close() inside the callback is allowed; the fd may be closed right after, and nothing
// is reported any more (the owner is cleared).
TEST_F(FdWatcherTest, CloseInsideCallbackThenCloseFd) {
  int calls = 0;
  {
    FdWatcher w(loop_, [&](Result<int>) {
      ++calls;
      w.close();
      ::close(fds_[0]);
      fds_[0] = -1;
    });
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kReadable | FdWatcher::kWritable).has_value());
    Timer later(loop_, [this] { loop_.stop(); });
    later.start(100ms);
    loop_.run();
    EXPECT_FALSE(w.is_open());
    w.close();  // idempotent
  }
  finish();
  EXPECT_EQ(calls, 1);
}

// stop() keeps the handle but reports nothing; destroying the watcher with the loop idle
// frees the handle in its close callback (ASan checks the leak and the late callback).
TEST_F(FdWatcherTest, StopSilencesAndDestroyIsSafe) {
  int calls = 0;
  {
    FdWatcher w(loop_, [&](Result<int>) { ++calls; });
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kReadable).has_value());
    w.stop();
    ASSERT_EQ(::write(fds_[1], "x", 1), 1);
    Timer later(loop_, [this] { loop_.stop(); });
    later.start(50ms);
    loop_.run();
    EXPECT_TRUE(w.is_open());
  }
  finish();
  EXPECT_EQ(calls, 0);
}

// Watching another fd replaces the handle.
TEST_F(FdWatcherTest, StartOnAnotherFdReplacesTheHandle) {
  std::vector<int> seen;
  {
    FdWatcher w(loop_, [&](Result<int> ev) {
      seen.push_back(ev.value_or(-1));
      loop_.stop();
    });
    ASSERT_TRUE(w.start(fds_[0], FdWatcher::kReadable).has_value());
    ASSERT_TRUE(w.start(fds_[1], FdWatcher::kReadable).has_value());
    EXPECT_EQ(w.fd(), fds_[1]);
    ASSERT_EQ(::write(fds_[0], "x", 1), 1);  // makes fds_[1] readable
    run();
  }
  finish();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], FdWatcher::kReadable);
}

// A descriptor libuv cannot poll is an error from start(), not a crash.
TEST_F(FdWatcherTest, BadFdIsAnError) {
  {
    FdWatcher w(loop_, [](Result<int>) {});
    const auto started = w.start(-1, FdWatcher::kReadable);
    ASSERT_FALSE(started.has_value());
    EXPECT_EQ(started.error().code, Errc::Io);
    EXPECT_FALSE(w.is_open());
  }
  finish();
}

}  // namespace
}  // namespace pooler::net
