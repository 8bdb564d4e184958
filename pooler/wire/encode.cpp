// Encoders for the messages pgmux originates. Lengths are patched by MessageWriter.

#include "pooler/wire/messages.h"

namespace pooler::wire {

void encode_startup(std::span<const std::pair<std::string, std::string>> params, WriteBuffer& out) {
  auto m = out.begin_untyped();
  m.u32(kProtocol3);
  for (const auto& [name, value] : params) {
    m.cstring(name).cstring(value);
  }
  m.u8(0);
}

void encode_cancel_request(std::int32_t pid, std::int32_t secret, WriteBuffer& out) {
  out.begin_untyped().u32(kCancelRequestCode).i32(pid).i32(secret);
}

void encode_ssl_request(WriteBuffer& out) { out.begin_untyped().u32(kSslRequestCode); }

void encode(const Query& msg, WriteBuffer& out) { out.begin_message(Query::kType).cstring(msg.sql); }

void encode(const Parse& msg, WriteBuffer& out) {
  auto m = out.begin_message(Parse::kType);
  m.cstring(msg.statement).cstring(msg.sql);
  if (msg.param_types.empty()) {
    m.u16(0);
  } else {
    m.bytes(msg.param_types);
  }
}

void encode(const Bind& msg, WriteBuffer& out) {
  out.begin_message(Bind::kType).cstring(msg.portal).cstring(msg.statement).bytes(msg.rest);
}

void encode(const Describe& msg, WriteBuffer& out) {
  out.begin_message(Describe::kType).u8(static_cast<std::uint8_t>(msg.target)).cstring(msg.name);
}

void encode(const Close& msg, WriteBuffer& out) {
  out.begin_message(Close::kType).u8(static_cast<std::uint8_t>(msg.target)).cstring(msg.name);
}

void encode_sync(WriteBuffer& out) { (void)out.begin_message('S'); }
void encode_flush(WriteBuffer& out) { (void)out.begin_message('H'); }
void encode_terminate(WriteBuffer& out) { (void)out.begin_message('X'); }

void encode_password(std::string_view password, WriteBuffer& out) {
  out.begin_message('p').cstring(password);
}

void encode_sasl_initial_response(std::string_view mechanism, std::string_view data,
                                  WriteBuffer& out) {
  out.begin_message('p').cstring(mechanism).i32(static_cast<std::int32_t>(data.size())).bytes(data);
}

void encode_sasl_response(std::string_view data, WriteBuffer& out) {
  out.begin_message('p').bytes(data);
}

void encode(const ReadyForQuery& msg, WriteBuffer& out) {
  out.begin_message(ReadyForQuery::kType).u8(static_cast<std::uint8_t>(msg.status));
}

void encode(const ParameterStatus& msg, WriteBuffer& out) {
  out.begin_message(ParameterStatus::kType).cstring(msg.name).cstring(msg.value);
}

void encode(const BackendKeyData& msg, WriteBuffer& out) {
  out.begin_message(BackendKeyData::kType).i32(msg.pid).i32(msg.secret);
}

void encode(const CommandComplete& msg, WriteBuffer& out) {
  out.begin_message(CommandComplete::kType).cstring(msg.tag);
}

namespace {
void encode_fields(char type, const ErrorResponse& msg, WriteBuffer& out) {
  auto m = out.begin_message(type);
  m.u8('S').cstring(msg.severity);
  m.u8('V').cstring(msg.severity);
  m.u8('C').cstring(msg.sqlstate);
  m.u8('M').cstring(msg.message);
  if (!msg.detail.empty()) {
    m.u8('D').cstring(msg.detail);
  }
  if (!msg.hint.empty()) {
    m.u8('H').cstring(msg.hint);
  }
  m.u8(0);
}
}  // namespace

void encode(const ErrorResponse& msg, WriteBuffer& out) { encode_fields('E', msg, out); }
void encode_notice(const ErrorResponse& msg, WriteBuffer& out) { encode_fields('N', msg, out); }

void encode_auth_ok(WriteBuffer& out) { out.begin_message('R').i32(0); }
void encode_auth_cleartext(WriteBuffer& out) { out.begin_message('R').i32(3); }

void encode_auth_md5(std::span<const std::uint8_t, 4> salt, WriteBuffer& out) {
  auto m = out.begin_message('R');
  m.i32(5);
  for (const auto b : salt) {
    m.u8(b);
  }
}

void encode_auth_sasl(std::span<const std::string_view> mechanisms, WriteBuffer& out) {
  auto m = out.begin_message('R');
  m.i32(10);
  for (const auto mech : mechanisms) {
    m.cstring(mech);
  }
  m.u8(0);
}

void encode_auth_sasl_continue(std::string_view data, WriteBuffer& out) {
  out.begin_message('R').i32(11).bytes(data);
}

void encode_auth_sasl_final(std::string_view data, WriteBuffer& out) {
  out.begin_message('R').i32(12).bytes(data);
}

void encode_parse_complete(WriteBuffer& out) { (void)out.begin_message('1'); }
void encode_bind_complete(WriteBuffer& out) { (void)out.begin_message('2'); }
void encode_close_complete(WriteBuffer& out) { (void)out.begin_message('3'); }

}  // namespace pooler::wire
