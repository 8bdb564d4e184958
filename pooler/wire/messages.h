#pragma once
// Typed messages pgmux inspects or sends. Names follow "Message Formats" in the
// PostgreSQL docs; F = sent by the client (frontend), B = sent by the backend.
// string_view/span fields borrow from the decoded Frame and die with it.
// Everything else is forwarded as raw frames and never decoded.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pooler/base/result.h"
#include "pooler/wire/frame.h"
#include "pooler/wire/write_buffer.h"

namespace pooler::wire {

inline constexpr std::uint32_t kProtocol3 = 196608;         // 3.0
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;

enum class TxStatus : char { Idle = 'I', InBlock = 'T', Failed = 'E' };

// ---- Startup phase (F, no type byte) ----

enum class StartupKind : std::uint8_t { Startup, SslRequest, GssEncRequest, CancelRequest };

struct StartupPacket {
  StartupKind kind = StartupKind::Startup;
  std::uint32_t protocol = 0;                                // Startup only
  std::vector<std::pair<std::string, std::string>> params;   // Startup only, in order
  std::int32_t cancel_pid = 0;                               // CancelRequest only
  std::int32_t cancel_secret = 0;
  std::string_view param(std::string_view name) const;
};

[[nodiscard]] Result<StartupPacket> decode_startup(const Frame& frame);
void encode_startup(std::span<const std::pair<std::string, std::string>> params, WriteBuffer& out);
void encode_cancel_request(std::int32_t pid, std::int32_t secret, WriteBuffer& out);
void encode_ssl_request(WriteBuffer& out);

// ---- Regular phase, frontend (F) ----

struct Query {  // F 'Q'
  static constexpr char kType = 'Q';
  std::string_view sql;
};

struct Parse {  // F 'P'
  static constexpr char kType = 'P';
  std::string_view statement;  // "" = unnamed
  std::string_view sql;
  std::span<const std::byte> param_types;  // u16 count + u32 oids, kept raw for re-encoding
};

struct Bind {  // F 'B'; only the names are decoded, the rest is carried raw
  static constexpr char kType = 'B';
  std::string_view portal;
  std::string_view statement;
  std::span<const std::byte> rest;  // formats, parameters, result formats
};

struct Describe {  // F 'D'
  static constexpr char kType = 'D';
  char target = 'S';  // 'S' statement, 'P' portal
  std::string_view name;
};

struct Close {  // F 'C'
  static constexpr char kType = 'C';
  char target = 'S';
  std::string_view name;
};

struct SaslInitialResponse {  // F 'p' during SASL
  std::string_view mechanism;
  std::string_view data;  // empty when the client sent length -1
};

[[nodiscard]] Result<Query> decode_query(const Frame& frame);
[[nodiscard]] Result<Parse> decode_parse(const Frame& frame);
[[nodiscard]] Result<Bind> decode_bind(const Frame& frame);
[[nodiscard]] Result<Describe> decode_describe(const Frame& frame);
[[nodiscard]] Result<Close> decode_close(const Frame& frame);
[[nodiscard]] Result<std::string_view> decode_password(const Frame& frame);  // PasswordMessage
[[nodiscard]] Result<SaslInitialResponse> decode_sasl_initial_response(const Frame& frame);

void encode(const Query& msg, WriteBuffer& out);
void encode(const Parse& msg, WriteBuffer& out);
void encode(const Bind& msg, WriteBuffer& out);
void encode(const Describe& msg, WriteBuffer& out);
void encode(const Close& msg, WriteBuffer& out);
void encode_sync(WriteBuffer& out);
void encode_flush(WriteBuffer& out);
void encode_terminate(WriteBuffer& out);
void encode_password(std::string_view password, WriteBuffer& out);
void encode_sasl_initial_response(std::string_view mechanism, std::string_view data, WriteBuffer& out);
void encode_sasl_response(std::string_view data, WriteBuffer& out);

// ---- Regular phase, backend (B) ----

// AuthenticationXXX ('R'): the request code and what follows it.
enum class AuthCode : std::int32_t {
  Ok = 0,
  CleartextPassword = 3,
  Md5Password = 5,
  Sasl = 10,
  SaslContinue = 11,
  SaslFinal = 12,
};

struct Authentication {  // B 'R'
  static constexpr char kType = 'R';
  std::int32_t code = 0;
  std::span<const std::byte> data;  // salt for MD5, mechanism list or SASL data
};

struct ParameterStatus {  // B 'S'
  static constexpr char kType = 'S';
  std::string_view name;
  std::string_view value;
};

struct BackendKeyData {  // B 'K'
  static constexpr char kType = 'K';
  std::int32_t pid = 0;
  std::int32_t secret = 0;
};

struct ReadyForQuery {  // B 'Z'
  static constexpr char kType = 'Z';
  TxStatus status = TxStatus::Idle;
};

struct CommandComplete {  // B 'C'
  static constexpr char kType = 'C';
  std::string_view tag;
};

// ErrorResponse (B 'E') and NoticeResponse (B 'N') share this layout.
struct ErrorResponse {
  static constexpr char kType = 'E';
  std::string severity = "ERROR";  // "ERROR", "FATAL"
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
};

[[nodiscard]] Result<Authentication> decode_authentication(const Frame& frame);
[[nodiscard]] Result<ParameterStatus> decode_parameter_status(const Frame& frame);
[[nodiscard]] Result<BackendKeyData> decode_backend_key_data(const Frame& frame);
[[nodiscard]] Result<ReadyForQuery> decode_ready_for_query(const Frame& frame);
[[nodiscard]] Result<CommandComplete> decode_command_complete(const Frame& frame);
[[nodiscard]] Result<ErrorResponse> decode_error_response(const Frame& frame);

void encode(const ReadyForQuery& msg, WriteBuffer& out);
void encode(const ParameterStatus& msg, WriteBuffer& out);
void encode(const BackendKeyData& msg, WriteBuffer& out);
void encode(const CommandComplete& msg, WriteBuffer& out);
void encode(const ErrorResponse& msg, WriteBuffer& out);
void encode_notice(const ErrorResponse& msg, WriteBuffer& out);  // NoticeResponse 'N'
void encode_auth_ok(WriteBuffer& out);
void encode_auth_cleartext(WriteBuffer& out);
void encode_auth_md5(std::span<const std::uint8_t, 4> salt, WriteBuffer& out);
void encode_auth_sasl(std::span<const std::string_view> mechanisms, WriteBuffer& out);
void encode_auth_sasl_continue(std::string_view data, WriteBuffer& out);
void encode_auth_sasl_final(std::string_view data, WriteBuffer& out);
void encode_parse_complete(WriteBuffer& out);   // '1'
void encode_bind_complete(WriteBuffer& out);    // '2'
void encode_close_complete(WriteBuffer& out);   // '3'

}  // namespace pooler::wire
