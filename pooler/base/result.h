#pragma once
// Errors as values on the hot path: Result<T> = std::expected<T, Error>.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

#if !defined(__cpp_lib_expected)
// clang < 16 with libstdc++ 12 (the libFuzzer build): <expected> declares nothing.
#include "pooler/base/expected_compat.h"
#endif

namespace pooler {

enum class Errc : std::uint8_t {
  Protocol,  // bytes that break the PostgreSQL protocol
  Auth,      // authentication failed
  Io,        // socket or system call failed
  Timeout,   // a configured timeout expired
  PoolFull,  // no backend and no room to wait
  Parse,     // SQL we could not parse
  Config,    // invalid configuration
  Internal,  // our bug, reported rather than crashed on
};

std::string_view to_string(Errc code);

struct Error {
  Errc code = Errc::Internal;
  std::string message;       // for the log and for the client's ErrorResponse
  std::string_view sqlstate = {};  // a specific SQLSTATE for the client, when `code` is too coarse
};

template <typename T>
using Result = std::expected<T, Error>;

// `return fail(Errc::Protocol, "...")` from any function returning Result<T>.
inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message), {}});
}
inline std::unexpected<Error> fail(Errc code, std::string message, std::string_view sqlstate) {
  return std::unexpected<Error>(Error{code, std::move(message), sqlstate});
}

inline std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::Protocol: return "protocol";
    case Errc::Auth: return "auth";
    case Errc::Io: return "io";
    case Errc::Timeout: return "timeout";
    case Errc::PoolFull: return "pool_full";
    case Errc::Parse: return "parse";
    case Errc::Config: return "config";
    case Errc::Internal: return "internal";
  }
  return "unknown";
}

}  // namespace pooler
