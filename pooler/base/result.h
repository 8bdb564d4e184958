#pragma once
// Errors as values on the hot path: Result<T> = std::expected<T, Error>.

#include <cstddef>
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

// A SQLSTATE code (five characters) held by value, so that an Error never points into
// the buffer it was built from (a view of a temporary std::string once sent empty errors).
class SqlState {
 public:
  constexpr SqlState() = default;
  constexpr SqlState(std::string_view code) {  // NOLINT: implicit, as Error{..., ss::kFoo}
    n_ = static_cast<std::uint8_t>(code.size() < kSize ? code.size() : kSize);
    for (std::size_t i = 0; i < n_; ++i) {
      c_[i] = code[i];
    }
  }
  template <std::size_t N>
  constexpr SqlState(const char (&code)[N]) : SqlState(std::string_view(code, N - 1)) {}  // NOLINT
  constexpr std::string_view view() const { return {c_, n_}; }
  constexpr operator std::string_view() const { return view(); }  // NOLINT: reads as text
  constexpr bool empty() const { return n_ == 0; }

 private:
  static constexpr std::size_t kSize = 5;
  char c_[kSize] = {};
  std::uint8_t n_ = 0;
};

struct Error {
  Errc code = Errc::Internal;
  std::string message;     // for the log and for the client's ErrorResponse
  SqlState sqlstate = {};  // a specific SQLSTATE for the client, when `code` is too coarse
};

template <typename T>
using Result = std::expected<T, Error>;

// `return fail(Errc::Protocol, "...")` from any function returning Result<T>.
inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message), {}});
}
inline std::unexpected<Error> fail(Errc code, std::string message, SqlState sqlstate) {
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
