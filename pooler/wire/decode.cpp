// Decoders for the messages pgmux inspects. Each reads straight through with a sticky
// ByteReader and checks once at the end: short or trailing bytes are a protocol error.

#include <string>

#include "pooler/wire/byte_reader.h"
#include "pooler/wire/messages.h"

namespace pooler::wire {
namespace {

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Result<void> expect_type(const Frame& frame, char type, std::string_view name) {
  if (frame.type != type) {
    return fail(Errc::Protocol, "expected " + std::string(name) + " message");
  }
  return {};
}

}  // namespace

std::string_view StartupPacket::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

Result<StartupPacket> decode_startup(const Frame& frame) {
  ByteReader in(frame.body);
  StartupPacket pkt;
  const std::uint32_t code = in.u32();
  if (code == kSslRequestCode || code == kGssEncRequestCode) {
    if (!in.at_end()) {
      return fail(Errc::Protocol, "malformed SSLRequest/GSSENCRequest packet");
    }
    pkt.kind = code == kSslRequestCode ? StartupKind::SslRequest : StartupKind::GssEncRequest;
    return pkt;
  }
  if (code == kCancelRequestCode) {
    pkt.kind = StartupKind::CancelRequest;
    pkt.cancel_pid = in.i32();
    pkt.cancel_secret = in.i32();
    if (!in.at_end()) {
      return fail(Errc::Protocol, "malformed CancelRequest packet");
    }
    return pkt;
  }
  if ((code >> 16) != 3) {
    return fail(Errc::Protocol,
                "unsupported frontend protocol " + std::to_string(code >> 16) + "." +
                    std::to_string(code & 0xffff) + ": server supports 3.0 to 3.0",
                "0A000");
  }
  pkt.protocol = code;
  // name\0value\0 ... then an empty name: the terminator, which must be the last byte.
  for (;;) {
    std::string_view name = in.cstring();
    if (!in.ok() || name.empty()) {
      break;
    }
    std::string_view value = in.cstring();
    if (!in.ok()) {
      break;
    }
    pkt.params.emplace_back(std::string(name), std::string(value));
  }
  if (!in.at_end()) {
    return fail(Errc::Protocol, "invalid startup packet layout: expected terminator as last byte");
  }
  return pkt;
}

Result<Query> decode_query(const Frame& frame) {
  ByteReader in(frame.body);
  Query msg;
  msg.sql = in.cstring();
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed Query message");
  }
  return msg;
}

Result<Parse> decode_parse(const Frame& frame) {
  ByteReader in(frame.body);
  Parse msg;
  msg.statement = in.cstring();
  msg.sql = in.cstring();
  const auto start = frame.body.size() - in.remaining();
  const std::uint16_t count = in.u16();
  in.bytes(std::size_t{count} * 4);
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed Parse message");
  }
  msg.param_types = frame.body.subspan(start);
  return msg;
}

Result<Bind> decode_bind(const Frame& frame) {
  ByteReader in(frame.body);
  Bind msg;
  msg.portal = in.cstring();
  msg.statement = in.cstring();
  msg.rest = in.rest();
  if (!in.ok()) {
    return fail(Errc::Protocol, "malformed Bind message");
  }
  return msg;
}

Result<Describe> decode_describe(const Frame& frame) {
  ByteReader in(frame.body);
  Describe msg;
  msg.target = static_cast<char>(in.u8());
  msg.name = in.cstring();
  if (!in.at_end() || (msg.target != 'S' && msg.target != 'P')) {
    return fail(Errc::Protocol, "malformed Describe message");
  }
  return msg;
}

Result<Close> decode_close(const Frame& frame) {
  ByteReader in(frame.body);
  Close msg;
  msg.target = static_cast<char>(in.u8());
  msg.name = in.cstring();
  if (!in.at_end() || (msg.target != 'S' && msg.target != 'P')) {
    return fail(Errc::Protocol, "malformed Close message");
  }
  return msg;
}

Result<std::string_view> decode_password(const Frame& frame) {
  if (auto ok = expect_type(frame, 'p', "PasswordMessage"); !ok) {
    return std::unexpected(ok.error());
  }
  ByteReader in(frame.body);
  const std::string_view password = in.cstring();
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed PasswordMessage");
  }
  return password;
}

Result<SaslInitialResponse> decode_sasl_initial_response(const Frame& frame) {
  if (auto ok = expect_type(frame, 'p', "SASLInitialResponse"); !ok) {
    return std::unexpected(ok.error());
  }
  ByteReader in(frame.body);
  SaslInitialResponse msg;
  msg.mechanism = in.cstring();
  const std::int32_t length = in.i32();
  if (length > 0) {
    msg.data = as_text(in.bytes(static_cast<std::size_t>(length)));
  } else if (length < -1) {
    return fail(Errc::Protocol, "malformed SASLInitialResponse message");
  }
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed SASLInitialResponse message");
  }
  return msg;
}

Result<Authentication> decode_authentication(const Frame& frame) {
  ByteReader in(frame.body);
  Authentication msg;
  msg.code = in.i32();
  msg.data = in.rest();
  if (!in.ok()) {
    return fail(Errc::Protocol, "malformed Authentication message");
  }
  return msg;
}

Result<ParameterStatus> decode_parameter_status(const Frame& frame) {
  ByteReader in(frame.body);
  ParameterStatus msg;
  msg.name = in.cstring();
  msg.value = in.cstring();
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed ParameterStatus message");
  }
  return msg;
}

Result<BackendKeyData> decode_backend_key_data(const Frame& frame) {
  ByteReader in(frame.body);
  BackendKeyData msg;
  msg.pid = in.i32();
  msg.secret = in.i32();
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed BackendKeyData message");
  }
  return msg;
}

Result<ReadyForQuery> decode_ready_for_query(const Frame& frame) {
  ByteReader in(frame.body);
  const char status = static_cast<char>(in.u8());
  if (!in.at_end() || (status != 'I' && status != 'T' && status != 'E')) {
    return fail(Errc::Protocol, "malformed ReadyForQuery message");
  }
  return ReadyForQuery{static_cast<TxStatus>(status)};
}

Result<CommandComplete> decode_command_complete(const Frame& frame) {
  ByteReader in(frame.body);
  CommandComplete msg;
  msg.tag = in.cstring();
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed CommandComplete message");
  }
  return msg;
}

Result<ErrorResponse> decode_error_response(const Frame& frame) {
  ByteReader in(frame.body);
  ErrorResponse msg;
  msg.severity.clear();
  while (in.ok()) {
    const char field = static_cast<char>(in.u8());
    if (field == 0) {
      break;
    }
    const std::string_view value = in.cstring();
    switch (field) {
      case 'V': msg.severity = value; break;
      case 'S':
        if (msg.severity.empty()) {
          msg.severity = value;
        }
        break;
      case 'C': msg.sqlstate = value; break;
      case 'M': msg.message = value; break;
      case 'D': msg.detail = value; break;
      case 'H': msg.hint = value; break;
      default: break;
    }
  }
  if (!in.at_end()) {
    return fail(Errc::Protocol, "malformed ErrorResponse message");
  }
  return msg;
}

}  // namespace pooler::wire
