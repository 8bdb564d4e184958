#pragma once
// Helpers shared by the libFuzzer targets in tests/fuzz (see scripts/fuzz).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "pooler/base/result.h"
#include "pooler/wire/frame.h"
#include "pooler/wire/messages.h"
#include "pooler/wire/write_buffer.h"

namespace pooler::fuzz {

// An invariant of the code under test; a violation is reported as a crash.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

inline std::span<const std::byte> as_bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The frame's own bytes on the wire: the header in front of `body` and the body.
inline std::span<const std::byte> wire_bytes(const wire::Frame& f) {
  const std::size_t header = f.type == 0 ? 4 : wire::kHeaderSize;
  return {f.body.data() - header, f.size_on_wire};
}

inline bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return as_text(a) == as_text(b);
}

// What peek_frame promises about a frame found at the start of `input`.
inline void check_frame(const wire::Frame& f, std::span<const std::byte> input, wire::Phase phase) {
  const std::size_t header = phase == wire::Phase::Startup ? 4 : wire::kHeaderSize;
  FUZZ_CHECK(f.size_on_wire <= input.size());
  FUZZ_CHECK(f.size_on_wire == header + f.body.size());
  FUZZ_CHECK(f.body.data() == input.data() + header);
}

// Max message size the fuzzers frame with: small, so that the limit is reached too.
inline constexpr std::uint32_t kFuzzMaxMessage = 64 * 1024;

// Re-encodes a decoded message of the frame's own type: where the encoding is canonical,
// the bytes must come back unchanged.
template <typename Msg>
void check_round_trip(const wire::Frame& f, const Result<Msg>& msg) {
  if (!msg || f.type != Msg::kType) {
    return;
  }
  wire::WriteBuffer out;
  encode(*msg, out);
  FUZZ_CHECK(same_bytes(out.data(), wire_bytes(f)));
}

// Cuts `input` into regular-phase frames as a connection's reader does, as long as they
// are complete and valid, checks what peek_frame promises of each, and hands it on.
template <typename OnFrame>
void for_each_frame(std::span<const std::byte> input, OnFrame on_frame) {
  auto rest = input;
  while (!rest.empty()) {
    auto scanned = wire::peek_frame(rest, wire::Phase::Regular, kFuzzMaxMessage);
    if (!scanned || !*scanned) {
      break;
    }
    const wire::Frame& f = **scanned;
    check_frame(f, rest, wire::Phase::Regular);
    on_frame(f);
    rest = rest.subspan(f.size_on_wire);
  }
}

}  // namespace pooler::fuzz
