#include "pooler/wire/messages.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/support/wire_builder.h"

namespace pooler::wire {
namespace {

using test::as_string;
using test::Body;
using test::Bytes;
using test::to_bytes;
using test::WireBuilder;

constexpr std::uint32_t kMaxSize = 64 * 1024 * 1024;

// The one frame `bytes` holds (which must stay alive while the frame is used).
Frame frame_of(const Bytes& bytes, Phase phase = Phase::Regular) {
  auto scanned = peek_frame(bytes, phase, kMaxSize);
  EXPECT_TRUE(scanned && scanned->has_value());
  if (!scanned || !scanned->has_value()) {
    return {};
  }
  EXPECT_EQ((*scanned)->size_on_wire, bytes.size()) << "more than one message";
  return **scanned;
}

Frame frame_with_body(char type, std::span<const std::byte> body) {
  Frame f;
  f.type = type;
  f.body = body;
  f.size_on_wire = body.size() + (type == 0 ? 4 : 5);
  return f;
}

Bytes body_of(const Bytes& message, bool typed = true) {
  return Bytes(message.begin() + (typed ? 5 : 4), message.end());
}

std::string text(std::span<const std::byte> b) { return as_string(b); }

// ---- Decoders: malformed input ----

using Decoder = Result<void> (*)(const Frame&);

template <auto Decode>
Result<void> run(const Frame& f) {
  auto r = Decode(f);
  if (!r) {
    return std::unexpected(r.error());
  }
  return {};
}

struct DecoderCase {
  std::string name;
  char type;   // 0 for startup packets
  Bytes body;  // a valid body
  Decoder decode;
  std::size_t valid_from = SIZE_MAX;  // the shortest prefix that is also valid (SIZE_MAX: none)
  bool has_strings = true;
};

std::vector<DecoderCase> decoder_cases() {
  const Bytes bind_body = WireBuilder::bind_body("portal", "stmt", {"1", std::nullopt}).take();
  return {
      {"StartupMessage", 0,
       body_of(WireBuilder::startup({{"user", "u"}, {"database", "d"}}), false),
       run<decode_startup>},
      {"StartupNoParams", 0, body_of(WireBuilder::startup({}), false), run<decode_startup>},
      {"SSLRequest", 0, body_of(WireBuilder::ssl_request(), false), run<decode_startup>, SIZE_MAX,
       false},
      {"GSSENCRequest", 0, body_of(WireBuilder::gssenc_request(), false), run<decode_startup>,
       SIZE_MAX, false},
      {"CancelRequest", 0, body_of(WireBuilder::cancel_request(1, 2), false), run<decode_startup>,
       SIZE_MAX, false},
      {"Query", 'Q', body_of(WireBuilder::query("SELECT 1")), run<decode_query>},
      {"Parse", 'P', body_of(WireBuilder::parse("s", "SELECT $1, $2", {23, 25})),
       run<decode_parse>},
      {"ParseNoTypes", 'P', body_of(WireBuilder::parse("", "SELECT 1")), run<decode_parse>},
      // Bind's tail is carried raw: any prefix that keeps both names is valid.
      {"Bind", 'B', bind_body, run<decode_bind>, std::string_view("portal\0stmt\0", 12).size()},
      {"DescribeStatement", 'D', body_of(WireBuilder::describe('S', "s")), run<decode_describe>},
      {"DescribePortal", 'D', body_of(WireBuilder::describe('P', "p")), run<decode_describe>},
      {"Close", 'C', body_of(WireBuilder::close('S', "s")), run<decode_close>},
      {"PasswordMessage", 'p', body_of(WireBuilder::password("pw")), run<decode_password>},
      {"SASLInitialResponse", 'p',
       body_of(WireBuilder::sasl_initial_response("SCRAM-SHA-256", "abc")),
       run<decode_sasl_initial_response>},
      {"SASLInitialResponseNoData", 'p',
       body_of(WireBuilder::sasl_initial_response("SCRAM-SHA-256", std::nullopt)),
       run<decode_sasl_initial_response>},
      // The authentication data is carried raw after the code.
      {"AuthenticationMD5", 'R', body_of(WireBuilder::authentication(5, "salt")),
       run<decode_authentication>, 4, false},
      {"ParameterStatus", 'S', body_of(WireBuilder::parameter_status("a", "b")),
       run<decode_parameter_status>},
      {"BackendKeyData", 'K', body_of(WireBuilder::backend_key_data(1, 2)),
       run<decode_backend_key_data>, SIZE_MAX, false},
      {"ReadyForQuery", 'Z', body_of(WireBuilder::ready_for_query('T')),
       run<decode_ready_for_query>, SIZE_MAX, false},
      {"CommandComplete", 'C', body_of(WireBuilder::command_complete("INSERT 0 1")),
       run<decode_command_complete>},
      {"ErrorResponse", 'E',
       body_of(WireBuilder::error_response({{'S', "ERROR"}, {'C', "42P01"}, {'M', "no table"}})),
       run<decode_error_response>},
      {"NoticeResponse", 'N', body_of(WireBuilder::notice_response({{'S', "NOTICE"}, {'M', "m"}})),
       run<decode_error_response>},
  };
}

// Every decoder accepts its valid body (the table itself is right).
TEST(DecodeTest, EveryDecoderAcceptsValidBody) {
  for (const auto& c : decoder_cases()) {
    auto r = c.decode(frame_with_body(c.type, c.body));
    EXPECT_TRUE(r.has_value()) << c.name << ": " << r.error().message;
  }
}

// Every decoder refuses a body cut short (a string missing its NUL, a short integer).
TEST(DecodeTest, EveryDecoderRefusesTruncatedBody) {
  for (const auto& c : decoder_cases()) {
    for (std::size_t cut = 0; cut < c.body.size(); ++cut) {
      auto r = c.decode(frame_with_body(c.type, std::span(c.body).first(cut)));
      if (cut >= c.valid_from) {
        EXPECT_TRUE(r.has_value()) << c.name << " cut=" << cut;
      } else {
        ASSERT_FALSE(r.has_value()) << c.name << " cut=" << cut;
        EXPECT_EQ(r.error().code, Errc::Protocol) << c.name << " cut=" << cut;
        EXPECT_FALSE(r.error().message.empty()) << c.name;
      }
    }
  }
}

// Every decoder with strings refuses a body whose terminators are all missing.
TEST(DecodeTest, EveryDecoderRefusesStringsWithoutNul) {
  for (const auto& c : decoder_cases()) {
    if (!c.has_strings) {
      continue;
    }
    Bytes no_nul = c.body;
    for (auto& b : no_nul) {
      if (b == std::byte{0}) {
        b = std::byte{'x'};
      }
    }
    auto r = c.decode(frame_with_body(c.type, no_nul));
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, Errc::Protocol) << c.name;
  }
}

// Every decoder whose message has a fixed end refuses trailing bytes.
TEST(DecodeTest, EveryDecoderRefusesTrailingBytes) {
  for (const auto& c : decoder_cases()) {
    if (c.valid_from != SIZE_MAX) {
      continue;  // raw tails (Bind, Authentication) absorb anything
    }
    for (const std::byte extra : {std::byte{0}, std::byte{'x'}}) {
      Bytes longer = c.body;
      longer.push_back(extra);
      auto r = c.decode(frame_with_body(c.type, longer));
      ASSERT_FALSE(r.has_value()) << c.name << " extra=" << int(extra);
      EXPECT_EQ(r.error().code, Errc::Protocol) << c.name;
    }
  }
}

// A startup packet asking for protocol 2.0 is refused with the version in the message.
TEST(DecodeTest, StartupOldProtocolRefused) {
  const Bytes bytes = WireBuilder::startup({{"user", "u"}}, 2u << 16);
  auto r = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::Protocol);
  EXPECT_NE(r.error().message.find("2.0"), std::string::npos) << r.error().message;
}

// A parameter name without its value is refused.
TEST(DecodeTest, StartupParameterWithoutValueRefused) {
  const Bytes bytes = WireBuilder::untyped(Body().u32(kProtocol3).cstr("user").u8(0));
  auto r = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::Protocol);
}

// Regression (was a bug): decode_startup accepts an empty parameter name before the end of the packet.
// PostgreSQL (ProcessStartupPacket) stops at the first empty name and then requires it to
// be the last byte: "\0value\0\0" after the protocol code is "invalid startup packet
// layout: expected terminator as last byte". pgmux instead records a ("", "value") pair.
// An empty parameter name in the middle of a startup packet is refused, as PostgreSQL does.
TEST(DecodeTest, StartupEmptyParameterNameRefused) {
  const Bytes bytes =
      WireBuilder::untyped(Body().u32(kProtocol3).cstr("user").cstr("u").cstr("").cstr("v").u8(0));
  auto r = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_FALSE(r.has_value()) << "accepted with " << r->params.size() << " params";
  EXPECT_EQ(r.error().code, Errc::Protocol);
}

// Regression (was a bug): ByteReader::cstring (pooler/wire/byte_reader.h) calls memchr(nullptr, 0, 0) when
// the body is an empty span without storage (a default-constructed Frame): undefined
// behaviour that UBSan aborts on ("null pointer passed as argument 1"). Frames from
// peek_frame always point into a buffer, so only hand-built frames reach it.
// Decoders refuse an empty body with no storage behind it, without undefined behaviour.
TEST(DecodeTest, EmptyBodyWithoutStorage) {
  Frame f;
  f.type = 'Q';
  EXPECT_FALSE(decode_query(f).has_value());
  EXPECT_FALSE(decode_parse(f).has_value());
  EXPECT_FALSE(decode_parameter_status(f).has_value());
}

// A Parse whose type count promises more OIDs than it carries is refused.
TEST(DecodeTest, ParseTypeCountBeyondBodyRefused) {
  const Bytes bytes = WireBuilder::raw('P', Body().cstr("s").cstr("SELECT $1").u16(2).u32(23));
  auto r = decode_parse(frame_of(bytes));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::Protocol);
}

// Describe and Close accept only 'S' and 'P' as target.
TEST(DecodeTest, DescribeAndCloseRefuseUnknownTarget) {
  const Bytes d = WireBuilder::describe('X', "s");
  const Bytes c = WireBuilder::close('s', "s");
  EXPECT_FALSE(decode_describe(frame_of(d)).has_value());
  EXPECT_FALSE(decode_close(frame_of(c)).has_value());
}

// ReadyForQuery accepts only I, T and E as transaction status.
TEST(DecodeTest, ReadyForQueryRefusesUnknownStatus) {
  for (const char status : {'I', 'T', 'E'}) {
    const Bytes z = WireBuilder::ready_for_query(status);
    auto r = decode_ready_for_query(frame_of(z));
    ASSERT_TRUE(r.has_value()) << status;
    EXPECT_EQ(static_cast<char>(r->status), status);
  }
  const Bytes bad = WireBuilder::ready_for_query('X');
  EXPECT_FALSE(decode_ready_for_query(frame_of(bad)).has_value());
}

// PasswordMessage and SASLInitialResponse decoders refuse frames of another type.
TEST(DecodeTest, PasswordDecodersCheckType) {
  const Bytes q = WireBuilder::query("secret");
  auto pw = decode_password(frame_of(q));
  ASSERT_FALSE(pw.has_value());
  EXPECT_EQ(pw.error().code, Errc::Protocol);
  auto sasl = decode_sasl_initial_response(frame_of(q));
  ASSERT_FALSE(sasl.has_value());
  EXPECT_EQ(sasl.error().code, Errc::Protocol);
}

// SASLInitialResponse lengths: -1 and 0 give no data, below -1 or beyond the body are refused.
TEST(DecodeTest, SaslInitialResponseLengths) {
  const Bytes none = WireBuilder::sasl_initial_response("SCRAM-SHA-256", std::nullopt);
  auto r = decode_sasl_initial_response(frame_of(none));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_TRUE(r->data.empty());

  const Bytes empty = WireBuilder::sasl_initial_response("SCRAM-SHA-256", "");
  ASSERT_TRUE(decode_sasl_initial_response(frame_of(empty)).has_value());

  const Bytes minus2 = WireBuilder::raw('p', Body().cstr("SCRAM-SHA-256").i32(-2));
  EXPECT_FALSE(decode_sasl_initial_response(frame_of(minus2)).has_value());

  const Bytes too_long = WireBuilder::raw('p', Body().cstr("SCRAM-SHA-256").i32(10).str("abc"));
  EXPECT_FALSE(decode_sasl_initial_response(frame_of(too_long)).has_value());
}

// ErrorResponse: 'V' (never localized) wins over 'S' in either order; unknown fields are skipped.
TEST(DecodeTest, ErrorResponseSeverityPrefersV) {
  const Bytes s_first = WireBuilder::error_response(
      {{'S', "FEHLER"}, {'V', "ERROR"}, {'C', "42P01"}, {'M', "m"}, {'P', "15"}, {'F', "x.c"}});
  auto a = decode_error_response(frame_of(s_first));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->severity, "ERROR");
  EXPECT_EQ(a->sqlstate, "42P01");

  const Bytes v_first = WireBuilder::error_response({{'V', "FATAL"}, {'S', "FATAL-LOCAL"}});
  auto b = decode_error_response(frame_of(v_first));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->severity, "FATAL");

  const Bytes s_only = WireBuilder::error_response({{'S', "PANIC"}});
  auto c = decode_error_response(frame_of(s_only));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->severity, "PANIC");
}

// An ErrorResponse with no fields at all (just the terminator) decodes to empty fields.
TEST(DecodeTest, ErrorResponseNoFields) {
  const Bytes e = WireBuilder::error_response({});
  auto r = decode_error_response(frame_of(e));
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->severity.empty());
  EXPECT_TRUE(r->message.empty());
}

// Bind decodes the names and carries the rest raw, byte for byte.
TEST(DecodeTest, BindKeepsRestRaw) {
  const Bytes bytes = WireBuilder::bind("p1", "s1", {"42", std::nullopt});
  auto r = decode_bind(frame_of(bytes));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->portal, "p1");
  EXPECT_EQ(r->statement, "s1");
  const Bytes rest = Body().u16(0).u16(2).i32(2).str("42").i32(-1).u16(0).take();
  EXPECT_EQ(Bytes(r->rest.begin(), r->rest.end()), rest);
}

// ---- Round trips: encode, frame, decode ----

// The StartupMessage encoder writes what the protocol says and params decode in order.
TEST(RoundTripTest, StartupParamsInOrder) {
  const std::vector<std::pair<std::string, std::string>> params = {
      {"user", "alice"}, {"database", "app"}, {"application_name", "psql"}, {"options", "-c x=1"}};
  WriteBuffer out;
  encode_startup(params, out);
  EXPECT_EQ(Bytes(out.data().begin(), out.data().end()), WireBuilder::startup(params));
  const Bytes bytes = out.take();
  auto pkt = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_TRUE(pkt.has_value()) << pkt.error().message;
  EXPECT_EQ(pkt->kind, StartupKind::Startup);
  EXPECT_EQ(pkt->protocol, kProtocol3);
  EXPECT_EQ(pkt->params, params);
  EXPECT_EQ(pkt->param("database"), "app");
  EXPECT_EQ(pkt->param("missing"), "");
}

// Parameter values may be empty and contain any non-NUL byte.
TEST(RoundTripTest, StartupEmptyAndBinaryValues) {
  const std::vector<std::pair<std::string, std::string>> params = {{"user", "\xc3\xa9l\xc3\xa8ve"},
                                                                   {"application_name", ""}};
  WriteBuffer out;
  encode_startup(params, out);
  const Bytes bytes = out.take();
  auto pkt = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_TRUE(pkt.has_value());
  EXPECT_EQ(pkt->params, params);
}

// CancelRequest keeps pid and secret, negative values included.
TEST(RoundTripTest, CancelRequest) {
  for (const auto& [pid, secret] : {std::pair{4242, 123456789}, std::pair{-1, INT32_MIN}}) {
    WriteBuffer out;
    encode_cancel_request(pid, secret, out);
    EXPECT_EQ(Bytes(out.data().begin(), out.data().end()),
              WireBuilder::cancel_request(pid, secret));
    const Bytes bytes = out.take();
    ASSERT_EQ(bytes.size(), 16u);
    auto pkt = decode_startup(frame_of(bytes, Phase::Startup));
    ASSERT_TRUE(pkt.has_value());
    EXPECT_EQ(pkt->kind, StartupKind::CancelRequest);
    EXPECT_EQ(pkt->cancel_pid, pid);
    EXPECT_EQ(pkt->cancel_secret, secret);
  }
}

// SSLRequest encodes to the 8 bytes PostgreSQL expects and decodes as such; GSSENC too.
TEST(RoundTripTest, SslAndGssEncRequest) {
  WriteBuffer out;
  encode_ssl_request(out);
  const Bytes bytes = out.take();
  EXPECT_EQ(bytes, WireBuilder::ssl_request());
  auto pkt = decode_startup(frame_of(bytes, Phase::Startup));
  ASSERT_TRUE(pkt.has_value());
  EXPECT_EQ(pkt->kind, StartupKind::SslRequest);

  const Bytes gss = WireBuilder::gssenc_request();
  auto g = decode_startup(frame_of(gss, Phase::Startup));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->kind, StartupKind::GssEncRequest);
}

// Query round trip.
TEST(RoundTripTest, Query) {
  WriteBuffer out;
  encode(Query{"SELECT 'é'; SELECT 2"}, out);
  EXPECT_EQ(Bytes(out.data().begin(), out.data().end()),
            WireBuilder::query("SELECT 'é'; SELECT 2"));
  const Bytes bytes = out.take();
  auto q = decode_query(frame_of(bytes));
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->sql, "SELECT 'é'; SELECT 2");
}

// Parse round trip, with and without parameter types; the type block re-encodes verbatim.
TEST(RoundTripTest, Parse) {
  const Bytes with_types = WireBuilder::parse("s1", "SELECT $1, $2", {23, 0});
  auto p = decode_parse(frame_of(with_types));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->statement, "s1");
  EXPECT_EQ(p->sql, "SELECT $1, $2");
  EXPECT_EQ(p->param_types.size(), 2u + 2 * 4);
  WriteBuffer out;
  encode(*p, out);
  EXPECT_EQ(Bytes(out.data().begin(), out.data().end()), with_types);

  const Bytes no_types = WireBuilder::parse("", "SELECT 1");
  auto u = decode_parse(frame_of(no_types));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->statement, "");
  WriteBuffer out2;
  encode(*u, out2);
  EXPECT_EQ(Bytes(out2.data().begin(), out2.data().end()), no_types);

  // An empty param_types span (built by pgmux, not decoded) encodes as count 0.
  WriteBuffer out3;
  encode(Parse{"s2", "SELECT 1", {}}, out3);
  EXPECT_EQ(Bytes(out3.data().begin(), out3.data().end()), WireBuilder::parse("s2", "SELECT 1"));
}

// Bind round trip (renaming the statement, as pgmux does) keeps the raw tail.
TEST(RoundTripTest, BindRenamed) {
  const Bytes original = WireBuilder::bind("", "client_name", {"1", std::nullopt, ""});
  auto b = decode_bind(frame_of(original));
  ASSERT_TRUE(b.has_value());
  Bind renamed = *b;
  renamed.statement = "pgmux_7";
  WriteBuffer out;
  encode(renamed, out);
  EXPECT_EQ(Bytes(out.data().begin(), out.data().end()),
            WireBuilder::bind("", "pgmux_7", {"1", std::nullopt, ""}));
}

// Describe and Close round trips for both targets.
TEST(RoundTripTest, DescribeAndClose) {
  for (const char target : {'S', 'P'}) {
    WriteBuffer out;
    encode(Describe{target, "name"}, out);
    encode(Close{target, ""}, out);
    const Bytes expected = WireBuilder::concat(
        {WireBuilder::describe(target, "name"), WireBuilder::close(target, "")});
    EXPECT_EQ(Bytes(out.data().begin(), out.data().end()), expected);

    const Bytes d_bytes = WireBuilder::describe(target, "name");
    auto d = decode_describe(frame_of(d_bytes));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->target, target);
    EXPECT_EQ(d->name, "name");
    const Bytes c_bytes = WireBuilder::close(target, "");
    auto c = decode_close(frame_of(c_bytes));
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->target, target);
    EXPECT_EQ(c->name, "");
  }
}

// Sync, Flush, Terminate and the empty completions are a type byte and length 4.
TEST(RoundTripTest, EmptyMessages) {
  WriteBuffer out;
  encode_sync(out);
  encode_flush(out);
  encode_terminate(out);
  encode_parse_complete(out);
  encode_bind_complete(out);
  encode_close_complete(out);
  const Bytes expected = WireBuilder::concat(
      {WireBuilder::sync(), WireBuilder::flush(), WireBuilder::terminate(),
       WireBuilder::parse_complete(), WireBuilder::bind_complete(), WireBuilder::close_complete()});
  EXPECT_EQ(Bytes(out.data().begin(), out.data().end()), expected);
}

// PasswordMessage round trip.
TEST(RoundTripTest, Password) {
  WriteBuffer out;
  encode_password("md5abcdef", out);
  const Bytes bytes = out.take();
  EXPECT_EQ(bytes, WireBuilder::password("md5abcdef"));
  auto pw = decode_password(frame_of(bytes));
  ASSERT_TRUE(pw.has_value());
  EXPECT_EQ(*pw, "md5abcdef");
}

// SASLInitialResponse and SASLResponse round trips.
TEST(RoundTripTest, Sasl) {
  WriteBuffer out;
  encode_sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=nonce", out);
  const Bytes bytes = out.take();
  EXPECT_EQ(bytes, WireBuilder::sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=nonce"));
  auto r = decode_sasl_initial_response(frame_of(bytes));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(r->data, "n,,n=,r=nonce");

  WriteBuffer out2;
  encode_sasl_response("c=biws,r=x,p=y", out2);
  EXPECT_EQ(out2.take(), WireBuilder::sasl_response("c=biws,r=x,p=y"));
}

// Every Authentication request decodes to its code and data.
TEST(RoundTripTest, Authentication) {
  const std::array<std::uint8_t, 4> salt = {0x01, 0x00, 0xff, 0x7f};
  const std::array<std::string_view, 2> mechs = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
  WriteBuffer out;
  encode_auth_ok(out);
  encode_auth_cleartext(out);
  encode_auth_md5(salt, out);
  encode_auth_sasl(mechs, out);
  encode_auth_sasl_continue("r=abc,s=c2FsdA==,i=4096", out);
  encode_auth_sasl_final("v=sig", out);
  const Bytes all = out.take();

  struct Want {
    AuthCode code;
    std::string data;
  };
  const std::vector<Want> wants = {
      {AuthCode::Ok, ""},
      {AuthCode::CleartextPassword, ""},
      {AuthCode::Md5Password, std::string("\x01\x00\xff\x7f", 4)},
      {AuthCode::Sasl, std::string("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34)},
      {AuthCode::SaslContinue, "r=abc,s=c2FsdA==,i=4096"},
      {AuthCode::SaslFinal, "v=sig"},
  };
  std::size_t used = 0;
  for (const auto& want : wants) {
    auto scanned = peek_frame(std::span(all).subspan(used), Phase::Regular, kMaxSize);
    ASSERT_TRUE(scanned && scanned->has_value());
    EXPECT_EQ((*scanned)->type, 'R');
    auto a = decode_authentication(**scanned);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->code, static_cast<std::int32_t>(want.code));
    EXPECT_EQ(text(a->data), want.data);
    used += (*scanned)->size_on_wire;
  }
  EXPECT_EQ(used, all.size());
  EXPECT_EQ(Bytes(all.begin() + 9, all.begin() + 18), WireBuilder::authentication(3));
}

// ParameterStatus, BackendKeyData, ReadyForQuery, CommandComplete round trips.
TEST(RoundTripTest, BackendStatusMessages) {
  WriteBuffer out;
  encode(ParameterStatus{"server_version", "16.2"}, out);
  encode(BackendKeyData{-5, INT32_MAX}, out);
  encode(ReadyForQuery{TxStatus::Failed}, out);
  encode(CommandComplete{"INSERT 0 3"}, out);
  const Bytes all = out.take();
  EXPECT_EQ(all, WireBuilder::concat({WireBuilder::parameter_status("server_version", "16.2"),
                                      WireBuilder::backend_key_data(-5, INT32_MAX),
                                      WireBuilder::ready_for_query('E'),
                                      WireBuilder::command_complete("INSERT 0 3")}));

  std::span<const std::byte> rest(all);
  auto next = [&rest]() {
    auto scanned = peek_frame(rest, Phase::Regular, kMaxSize);
    EXPECT_TRUE(scanned && scanned->has_value());
    Frame f = **scanned;
    rest = rest.subspan(f.size_on_wire);
    return f;
  };
  auto ps = decode_parameter_status(next());
  ASSERT_TRUE(ps.has_value());
  EXPECT_EQ(ps->name, "server_version");
  EXPECT_EQ(ps->value, "16.2");
  auto k = decode_backend_key_data(next());
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->pid, -5);
  EXPECT_EQ(k->secret, INT32_MAX);
  auto z = decode_ready_for_query(next());
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(z->status, TxStatus::Failed);
  auto cc = decode_command_complete(next());
  ASSERT_TRUE(cc.has_value());
  EXPECT_EQ(cc->tag, "INSERT 0 3");
  EXPECT_TRUE(rest.empty());
}

// ErrorResponse keeps severity, SQLSTATE, message, detail and hint; NoticeResponse too.
TEST(RoundTripTest, ErrorAndNoticeFields) {
  const ErrorResponse full{"FATAL", "28P01", "password authentication failed for user \"a\"",
                           "Role \"a\" does not exist.", "Check pgmux.toml."};
  for (const bool notice : {false, true}) {
    WriteBuffer out;
    if (notice) {
      encode_notice(full, out);
    } else {
      encode(full, out);
    }
    const Bytes bytes = out.take();
    EXPECT_EQ(static_cast<char>(bytes[0]), notice ? 'N' : 'E');
    auto e = decode_error_response(frame_of(bytes));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->severity, full.severity);
    EXPECT_EQ(e->sqlstate, full.sqlstate);
    EXPECT_EQ(e->message, full.message);
    EXPECT_EQ(e->detail, full.detail);
    EXPECT_EQ(e->hint, full.hint);
  }
}

// ErrorResponse without detail or hint writes S, V, C, M only.
TEST(RoundTripTest, ErrorWithoutDetailOrHint) {
  WriteBuffer out;
  encode(ErrorResponse{"ERROR", "08P01", "bad", "", ""}, out);
  EXPECT_EQ(out.take(), WireBuilder::error_response(
                            {{'S', "ERROR"}, {'V', "ERROR"}, {'C', "08P01"}, {'M', "bad"}}));
}

// ---- WriteBuffer ----

// Consecutive messages each get their own length, whatever their size.
TEST(WriteBufferTest, ConsecutiveMessagesPatchedIndependently) {
  WriteBuffer out;
  const std::string big(70'000, 'x');  // more than 16 bits of length
  { out.begin_message('A').u8(1); }
  { (void)out.begin_message('B'); }
  { out.begin_message('C').bytes(big); }
  { out.begin_untyped().u32(7); }
  EXPECT_EQ(out.take(),
            WireBuilder::concat({WireBuilder::raw('A', Body().u8(1)), WireBuilder::raw('B', Body()),
                                 WireBuilder::raw('C', std::string_view(big)),
                                 WireBuilder::untyped(Body().u32(7))}));
}

// A message whose body is appended raw while its writer is open counts those bytes.
TEST(WriteBufferTest, RawAppendInsideOpenMessageCounted) {
  WriteBuffer out;
  const Bytes payload = to_bytes("1\t2\n");
  {
    auto m = out.begin_message('d');
    out.append(payload);
  }
  EXPECT_EQ(out.take(), WireBuilder::copy_data("1\t2\n"));
}

// A writer opened inside another (nested scopes) patches its own length; the outer one,
// closed last, counts everything after its own length word.
TEST(WriteBufferTest, NestedWritersPatchOnDestruction) {
  WriteBuffer out;
  {
    auto outer = out.begin_message('O');
    outer.u8('a');
    {
      auto inner = out.begin_message('I');
      inner.u8('b');
    }
  }
  const Bytes bytes = out.take();
  // outer: 'O' len=4+1+6 'a' | inner: 'I' len=5 'b'
  const Bytes inner = WireBuilder::raw('I', Body().u8('b'));
  EXPECT_EQ(bytes, WireBuilder::raw('O', Body().u8('a').bytes(inner)));
}

// Appending raw bytes between messages and take()/clear() leave a consistent buffer.
TEST(WriteBufferTest, AppendTakeClear) {
  WriteBuffer out;
  EXPECT_TRUE(out.empty());
  const Bytes forwarded = WireBuilder::query("SELECT 1");
  out.append(forwarded);
  encode_sync(out);
  EXPECT_EQ(out.size(), forwarded.size() + 5);
  EXPECT_EQ(out.take(), WireBuilder::concat({forwarded, WireBuilder::sync()}));
  EXPECT_TRUE(out.empty());
  encode_flush(out);
  out.clear();
  EXPECT_TRUE(out.empty());
}

// Integers are written big-endian, signed values in two's complement.
TEST(WriteBufferTest, IntegersBigEndian) {
  WriteBuffer out;
  { out.begin_message('x').u16(0x0102).u32(0x03040506).i16(-2).i32(-1); }
  EXPECT_EQ(out.take(),
            WireBuilder::raw('x', Body().u16(0x0102).u32(0x03040506).u16(0xfffe).u32(0xffffffff)));
}

// ---- Random input ----

// Random bytes through peek_frame and every decoder never crash and frames stay in bounds.
TEST(FuzzTest, RandomBytesNeverCrash) {
  constexpr std::uint32_t kSeed = 20240611;
  std::printf("FuzzTest seed=%u\n", kSeed);
  std::mt19937 rng(kSeed);
  const std::string types = "QPBDCSHXpRSKZCEN123nIsdcfT";
  auto decode_all = [](const Frame& f) {
    (void)decode_query(f);
    (void)decode_parse(f);
    (void)decode_bind(f);
    (void)decode_describe(f);
    (void)decode_close(f);
    (void)decode_password(f);
    (void)decode_sasl_initial_response(f);
    (void)decode_authentication(f);
    (void)decode_parameter_status(f);
    (void)decode_backend_key_data(f);
    (void)decode_ready_for_query(f);
    (void)decode_command_complete(f);
    if (auto e = decode_error_response(f)) {
      (void)e->message.size();
    }
    if (auto p = decode_startup(f)) {
      for (const auto& [k, v] : p->params) {
        (void)k.size();
        (void)v.size();
      }
    }
  };
  for (int iter = 0; iter < 1'500; ++iter) {
    const std::size_t n = rng() % 64;
    Bytes input;
    input.reserve(64);  // a real buffer even when empty (see EmptyBodyWithoutStorage)
    input.resize(n);
    for (auto& b : input) {
      // Mostly small bytes and NULs so that strings end and lengths stay plausible.
      const unsigned r = rng() % 4;
      b = static_cast<std::byte>(r == 0 ? 0 : r == 1 ? rng() % 8 : rng() % 256);
    }
    if (n >= 5 && rng() % 2 == 0) {  // a plausible header
      input[0] = static_cast<std::byte>(types[rng() % types.size()]);
      const std::uint32_t len = 4 + rng() % n;
      input[1] = std::byte{0};
      input[2] = std::byte{0};
      input[3] = static_cast<std::byte>(len >> 8);
      input[4] = static_cast<std::byte>(len);
    }
    for (const Phase phase : {Phase::Startup, Phase::Regular}) {
      auto scanned = peek_frame(input, phase, 4096);
      if (!scanned || !scanned->has_value()) {
        continue;
      }
      const Frame& f = **scanned;
      ASSERT_LE(f.size_on_wire, input.size()) << "iter=" << iter;
      ASSERT_GE(f.body.data(), input.data());
      ASSERT_LE(f.body.data() + f.body.size(), input.data() + input.size());
      decode_all(f);
    }
    // The body alone (the type matters only to the PasswordMessage decoders).
    for (const char type : {'Q', 'p'}) {
      decode_all(frame_with_body(type, input));
    }
  }
}

}  // namespace
}  // namespace pooler::wire
