// notify_systemd without a socket: what it does when not under systemd and with addresses
// it cannot use. (The datagrams themselves are checked against a real socket and a real
// pgmux process in tests/integration/lifecycle_test.cpp.)

#include "pooler/app/systemd_notify.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace {

using pooler::app::notify_systemd;
using pooler::app::reloading_state;

// Restores NOTIFY_SOCKET as it was when the test started.
class NotifyEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = std::getenv("NOTIFY_SOCKET")) {
      saved_ = v;
    }
  }
  void TearDown() override {
    if (saved_) {
      ::setenv("NOTIFY_SOCKET", saved_->c_str(), 1);
    } else {
      ::unsetenv("NOTIFY_SOCKET");
    }
  }
  std::optional<std::string> saved_;
};

// Not started by systemd: nothing to do, and no error.
TEST_F(NotifyEnvTest, UnsetOrEmptyIsNoOp) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(notify_systemd("READY=1"));
  ::setenv("NOTIFY_SOCKET", "", 1);
  EXPECT_TRUE(notify_systemd("READY=1"));
}

// A relative path or a vsock address is refused with the address in the message.
TEST_F(NotifyEnvTest, UnsupportedAddressIsAnError) {
  for (const char* bad : {"relative/path", "vsock:2:1234"}) {
    ::setenv("NOTIFY_SOCKET", bad, 1);
    auto r = notify_systemd("READY=1");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

// A path longer than sockaddr_un can hold is refused, not truncated.
TEST_F(NotifyEnvTest, TooLongPathIsAnError) {
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'x')).c_str(), 1);
  EXPECT_FALSE(notify_systemd("READY=1"));
}

// Nobody listening on the path: the send fails and says so.
TEST_F(NotifyEnvTest, MissingSocketIsAnError) {
  ::setenv("NOTIFY_SOCKET", "/nonexistent-dir-pgmux/notify", 1);
  auto r = notify_systemd("READY=1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent-dir-pgmux/notify"), std::string::npos);
}

// RELOADING=1 carries MONOTONIC_USEC, as systemd 253+ asks for.
TEST(ReloadingStateTest, CarriesMonotonicUsec) {
  const std::string s = reloading_state();
  ASSERT_TRUE(s.starts_with("RELOADING=1\nMONOTONIC_USEC=")) << s;
  const std::string usec = s.substr(s.find('=', 12) + 1);
  ASSERT_FALSE(usec.empty());
  EXPECT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << s;
}

}  // namespace
