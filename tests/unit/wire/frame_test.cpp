#include "pooler/wire/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/wire_builder.h"

namespace pooler::wire {
namespace {

using test::Bytes;
using test::WireBuilder;

constexpr std::uint32_t kMaxSize = 64 * 1024 * 1024;      // the configured default
constexpr std::uint32_t kConfigMax = 1024 * 1024 * 1024;  // the largest the config accepts

struct Case {
  std::string name;
  Bytes bytes;
};

std::vector<Case> startup_cases() {
  return {
      {"StartupMessage", WireBuilder::startup({{"user", "alice"}, {"database", "app"}})},
      {"StartupMessageNoParams", WireBuilder::startup({})},
      {"SSLRequest", WireBuilder::ssl_request()},
      {"GSSENCRequest", WireBuilder::gssenc_request()},
      {"CancelRequest", WireBuilder::cancel_request(4242, -17)},
  };
}

std::vector<Case> regular_cases() {
  return {
      {"Query", WireBuilder::query("SELECT 1")},
      {"Parse", WireBuilder::parse("s1", "SELECT $1", {23})},
      {"Bind", WireBuilder::bind("", "s1", {"42", std::nullopt})},
      {"DescribeStatement", WireBuilder::describe('S', "s1")},
      {"DescribePortal", WireBuilder::describe('P', "")},
      {"Execute", WireBuilder::execute("", 10)},
      {"Close", WireBuilder::close('S', "s1")},
      {"Sync", WireBuilder::sync()},
      {"Flush", WireBuilder::flush()},
      {"Terminate", WireBuilder::terminate()},
      {"PasswordMessage", WireBuilder::password("secret")},
      {"SASLInitialResponse", WireBuilder::sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=abc")},
      {"SASLResponse", WireBuilder::sasl_response("c=biws,r=abc,p=xyz")},
      {"CopyData", WireBuilder::copy_data("1\t2\n")},
      {"CopyDone", WireBuilder::copy_done()},
      {"CopyFail", WireBuilder::copy_fail("nope")},
      {"AuthenticationOk", WireBuilder::authentication(0)},
      {"AuthenticationMD5", WireBuilder::authentication(5, "abcd")},
      {"AuthenticationSASL", WireBuilder::auth_sasl({"SCRAM-SHA-256"})},
      {"ParameterStatus", WireBuilder::parameter_status("TimeZone", "UTC")},
      {"BackendKeyData", WireBuilder::backend_key_data(1, 2)},
      {"ReadyForQuery", WireBuilder::ready_for_query('I')},
      {"CommandComplete", WireBuilder::command_complete("SELECT 1")},
      {"ErrorResponse", WireBuilder::error_response({{'S', "ERROR"}, {'C', "42601"}, {'M', "x"}})},
      {"NoticeResponse", WireBuilder::notice_response({{'S', "NOTICE"}, {'M', "hi"}})},
      {"ParseComplete", WireBuilder::parse_complete()},
      {"BindComplete", WireBuilder::bind_complete()},
      {"CloseComplete", WireBuilder::close_complete()},
      {"NoData", WireBuilder::no_data()},
      {"EmptyQueryResponse", WireBuilder::empty_query_response()},
      {"PortalSuspended", WireBuilder::portal_suspended()},
      {"ParameterDescription", WireBuilder::parameter_description({23, 25})},
      {"RowDescription", WireBuilder::row_description({"a", "b"})},
      {"DataRow", WireBuilder::data_row({"1", std::nullopt})},
      {"NotificationResponse", WireBuilder::notification(7, "chan", "payload")},
  };
}

// Splits `bytes` at every boundary: every strict prefix needs more data, the whole is
// exactly one frame whose body is what follows the header.
void expect_split_anywhere(const Bytes& bytes, Phase phase, const std::string& name) {
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto scanned = peek_frame(std::span(bytes).first(cut), phase, kMaxSize);
    ASSERT_TRUE(scanned.has_value()) << name << " cut=" << cut << ": " << scanned.error().message;
    EXPECT_FALSE(scanned->has_value()) << name << " cut=" << cut;
  }
  auto scanned = peek_frame(bytes, phase, kMaxSize);
  ASSERT_TRUE(scanned.has_value()) << name << ": " << scanned.error().message;
  ASSERT_TRUE(scanned->has_value()) << name;
  const Frame& f = **scanned;
  EXPECT_EQ(f.size_on_wire, bytes.size()) << name;
  const std::size_t header = phase == Phase::Startup ? 4 : 5;
  EXPECT_EQ(f.type, phase == Phase::Startup ? 0 : static_cast<char>(bytes[0])) << name;
  EXPECT_EQ(f.body.size(), bytes.size() - header) << name;
  EXPECT_EQ(f.body.data(), bytes.data() + header) << name;
}

// A StartupMessage cut at any byte boundary needs more data; whole, it is one frame.
TEST(FrameTest, StartupMessageSplitAnywhere) {
  const auto bytes = WireBuilder::startup({{"user", "alice"}, {"database", "app"}});
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto scanned = peek_frame(std::span(bytes).first(cut), Phase::Startup, kMaxSize);
    ASSERT_TRUE(scanned.has_value()) << "cut=" << cut;
    EXPECT_FALSE(scanned->has_value()) << "cut=" << cut;
  }
  auto scanned = peek_frame(bytes, Phase::Startup, kMaxSize);
  ASSERT_TRUE(scanned && scanned->has_value());
  EXPECT_EQ((*scanned)->size_on_wire, bytes.size());
}

// Every startup-phase packet kind split anywhere needs more data; whole, it is one frame.
TEST(FrameTest, EveryStartupPacketSplitAnywhere) {
  for (const auto& c : startup_cases()) {
    expect_split_anywhere(c.bytes, Phase::Startup, c.name);
  }
}

// Every regular message kind (both directions) split anywhere needs more data; whole, one frame.
TEST(FrameTest, EveryRegularMessageSplitAnywhere) {
  for (const auto& c : regular_cases()) {
    expect_split_anywhere(c.bytes, Phase::Regular, c.name);
  }
}

// Bytes after a complete message are not part of its frame.
TEST(FrameTest, FrameStopsAtItsLength) {
  const Bytes bytes = WireBuilder::concat({WireBuilder::query("SELECT 1"), WireBuilder::sync()});
  auto scanned = peek_frame(bytes, Phase::Regular, kMaxSize);
  ASSERT_TRUE(scanned && scanned->has_value());
  EXPECT_EQ((*scanned)->type, 'Q');
  EXPECT_EQ((*scanned)->size_on_wire, WireBuilder::query("SELECT 1").size());
}

// Every regular message kind back to back comes out one frame at a time, in order.
TEST(FrameTest, BackToBackMessagesOneFrameEach) {
  Bytes all;
  std::vector<char> types;
  for (const auto& c : regular_cases()) {
    all.insert(all.end(), c.bytes.begin(), c.bytes.end());
    types.push_back(static_cast<char>(c.bytes[0]));
  }
  std::size_t used = 0;
  std::vector<char> seen;
  while (used < all.size()) {
    auto scanned = peek_frame(std::span(all).subspan(used), Phase::Regular, kMaxSize);
    ASSERT_TRUE(scanned && scanned->has_value()) << "at " << used;
    seen.push_back((*scanned)->type);
    used += (*scanned)->size_on_wire;
  }
  EXPECT_EQ(used, all.size());
  EXPECT_EQ(seen, types);
}

// A pipeline delivered one byte at a time yields the same frames as delivered whole.
TEST(FrameTest, PipelineDeliveredByteByByte) {
  const Bytes all = WireBuilder::concat(
      {WireBuilder::parse("", "SELECT $1", {23}), WireBuilder::bind("", "", {"1"}),
       WireBuilder::describe('P', ""), WireBuilder::execute(""), WireBuilder::sync()});
  Bytes pending;
  std::string seen;
  for (const std::byte b : all) {
    pending.push_back(b);
    for (;;) {
      auto scanned = peek_frame(pending, Phase::Regular, kMaxSize);
      ASSERT_TRUE(scanned.has_value());
      if (!scanned->has_value()) {
        break;
      }
      seen += (*scanned)->type;
      pending.erase(pending.begin(), pending.begin() + static_cast<long>((*scanned)->size_on_wire));
    }
  }
  EXPECT_EQ(seen, "PBDES");
  EXPECT_TRUE(pending.empty());
}

// Startup packets back to back (SSLRequest then StartupMessage) come out one at a time.
TEST(FrameTest, SslRequestThenStartupBackToBack) {
  const Bytes ssl = WireBuilder::ssl_request();
  const Bytes startup = WireBuilder::startup({{"user", "u"}});
  const Bytes all = WireBuilder::concat({ssl, startup});
  auto first = peek_frame(all, Phase::Startup, kMaxSize);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->size_on_wire, ssl.size());
  auto second = peek_frame(std::span(all).subspan(ssl.size()), Phase::Startup, kMaxSize);
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ((*second)->size_on_wire, startup.size());
}

// A message with an empty body has length 4 and an empty body span.
TEST(FrameTest, EmptyBodyMessage) {
  const Bytes sync = WireBuilder::sync();
  ASSERT_EQ(sync.size(), 5u);
  auto scanned = peek_frame(sync, Phase::Regular, kMaxSize);
  ASSERT_TRUE(scanned && scanned->has_value());
  EXPECT_TRUE((*scanned)->body.empty());
}

// Empty input needs more data in both phases.
TEST(FrameTest, EmptyInputNeedsMore) {
  for (const Phase phase : {Phase::Startup, Phase::Regular}) {
    auto scanned = peek_frame({}, phase, kMaxSize);
    ASSERT_TRUE(scanned.has_value());
    EXPECT_FALSE(scanned->has_value());
  }
}

// Regular lengths below 4 cannot count their own length word: a protocol error naming it.
TEST(FrameTest, RegularLengthBelowFourRefused) {
  for (const std::uint32_t length : {0u, 1u, 2u, 3u}) {
    auto scanned = peek_frame(WireBuilder::header('Q', length), Phase::Regular, kMaxSize);
    ASSERT_FALSE(scanned.has_value()) << "length=" << length;
    EXPECT_EQ(scanned.error().code, Errc::Protocol);
    EXPECT_NE(scanned.error().message.find("invalid message length"), std::string::npos)
        << scanned.error().message;
  }
}

// Lengths that are huge or negative as int32 are refused from the header alone, naming the limit.
TEST(FrameTest, RegularHugeOrNegativeLengthRefused) {
  for (const std::uint32_t max : {kMaxSize, kConfigMax}) {
    for (const std::uint32_t length : {0x7fffffffu, 0x80000000u, 0xfffffffcu, 0xffffffffu}) {
      auto scanned = peek_frame(WireBuilder::header('Q', length), Phase::Regular, max);
      ASSERT_FALSE(scanned.has_value()) << "length=" << length << " max=" << max;
      EXPECT_EQ(scanned.error().code, Errc::Protocol);
      EXPECT_NE(scanned.error().message.find("max_message_size"), std::string::npos)
          << scanned.error().message;
      EXPECT_NE(scanned.error().message.find(std::to_string(length)), std::string::npos)
          << scanned.error().message;
    }
  }
}

// max_size itself is allowed, one more is refused before the body arrives.
TEST(FrameTest, RegularMaxSizeBoundary) {
  constexpr std::uint32_t kSmall = 1024;
  auto at_limit = peek_frame(WireBuilder::header('d', kSmall), Phase::Regular, kSmall);
  ASSERT_TRUE(at_limit.has_value());
  EXPECT_FALSE(at_limit->has_value());  // valid, waiting for the body

  Bytes whole = WireBuilder::raw('d', Bytes(kSmall - 4, std::byte{'x'}));
  auto complete = peek_frame(whole, Phase::Regular, kSmall);
  ASSERT_TRUE(complete && complete->has_value());
  EXPECT_EQ((*complete)->size_on_wire, kSmall + 1);

  auto over = peek_frame(WireBuilder::header('d', kSmall + 1), Phase::Regular, kSmall);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, Errc::Protocol);
  EXPECT_NE(over.error().message.find("1025"), std::string::npos) << over.error().message;
}

// A header alone (5 bytes) is enough to refuse a bad length; 4 bytes are not yet a header.
TEST(FrameTest, RegularBadLengthDetectedOnlyOnceHeaderComplete) {
  const Bytes bad = WireBuilder::header('Q', 2);
  auto partial = peek_frame(std::span(bad).first(4), Phase::Regular, kMaxSize);
  ASSERT_TRUE(partial.has_value());
  EXPECT_FALSE(partial->has_value());
  EXPECT_FALSE(peek_frame(bad, Phase::Regular, kMaxSize).has_value());
}

// Startup lengths below 8 (no room for the protocol code) are refused, naming the problem.
TEST(FrameTest, StartupLengthBelowEightRefused) {
  for (const std::uint32_t length : {0u, 3u, 4u, 7u}) {
    const Bytes bytes = WireBuilder::with_length(WireBuilder::ssl_request(), length, false);
    auto scanned = peek_frame(bytes, Phase::Startup, kMaxSize);
    ASSERT_FALSE(scanned.has_value()) << "length=" << length;
    EXPECT_EQ(scanned.error().code, Errc::Protocol);
    EXPECT_NE(scanned.error().message.find("invalid length of startup packet"), std::string::npos)
        << scanned.error().message;
  }
}

// A startup packet of exactly 10,000 bytes is accepted and decodes; 10,001 is refused.
TEST(FrameTest, StartupPacketSizeLimit) {
  // 4 (length) + 4 (protocol) + "user\0" (5) + value + NUL + final NUL = 15 + value.
  const std::string value(kMaxStartupPacket - 15, 'v');
  const Bytes at_limit = WireBuilder::startup({{"user", value}});
  ASSERT_EQ(at_limit.size(), kMaxStartupPacket);
  auto ok = peek_frame(at_limit, Phase::Startup, kMaxSize);
  ASSERT_TRUE(ok && ok->has_value());
  EXPECT_EQ((*ok)->size_on_wire, kMaxStartupPacket);

  const Bytes over = WireBuilder::startup({{"user", value + "v"}});
  ASSERT_EQ(over.size(), kMaxStartupPacket + 1);
  auto refused = peek_frame(over, Phase::Startup, kMaxSize);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::Protocol);
  EXPECT_NE(refused.error().message.find("10001"), std::string::npos) << refused.error().message;
  // Refused from the length word alone, before the body arrives.
  EXPECT_FALSE(peek_frame(std::span(over).first(4), Phase::Startup, kMaxSize).has_value());
}

// Startup lengths that are negative as int32 are refused.
TEST(FrameTest, StartupHugeOrNegativeLengthRefused) {
  for (const std::uint32_t length : {0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    const Bytes bytes = WireBuilder::with_length(WireBuilder::ssl_request(), length, false);
    auto scanned = peek_frame(bytes, Phase::Startup, kMaxSize);
    ASSERT_FALSE(scanned.has_value()) << "length=" << length;
    EXPECT_EQ(scanned.error().code, Errc::Protocol);
  }
}

// Garbage that is not PostgreSQL (an HTTP request, a TLS ClientHello) is refused at once.
TEST(FrameTest, GarbageRefused) {
  const Bytes http = test::to_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  // "GET " read as a startup length is 0x47455420, far above 10,000.
  EXPECT_FALSE(peek_frame(http, Phase::Startup, kMaxSize).has_value());
  // 'G' then "ET /" read as a regular length is 0x4554202f, above max_message_size.
  EXPECT_FALSE(peek_frame(http, Phase::Regular, kMaxSize).has_value());
  const Bytes tls = {std::byte{0x16}, std::byte{0x03}, std::byte{0x01}, std::byte{0x02},
                     std::byte{0x00}, std::byte{0x01}, std::byte{0x00}, std::byte{0x01}};
  EXPECT_FALSE(peek_frame(tls, Phase::Startup, kMaxSize).has_value());
}

// header_length() reads the same length word peek_frame does.
TEST(FrameTest, HeaderLengthMatchesPeekFrame) {
  const Bytes q = WireBuilder::query("SELECT 1");
  EXPECT_EQ(header_length(q.data()), q.size() - 1);
  const Bytes big = WireBuilder::header('d', 0x01020304);
  EXPECT_EQ(header_length(big.data()), 0x01020304u);
}

}  // namespace
}  // namespace pooler::wire
