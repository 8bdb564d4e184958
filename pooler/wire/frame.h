#pragma once
// Framing of the PostgreSQL protocol ("Message Formats" in the PostgreSQL docs).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "pooler/base/result.h"

namespace pooler::wire {

// Before the StartupMessage, clients send packets with no type byte
// (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
enum class Phase { Startup, Regular };

// One complete message, viewed in place. `body` excludes the type byte and the
// length word; it is valid until the caller consumes `size_on_wire` bytes.
struct Frame {
  char type = 0;  // 0 in Phase::Startup
  std::span<const std::byte> body;
  std::size_t size_on_wire = 0;
};

// Same limit as PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
inline constexpr std::uint32_t kMaxStartupPacket = 10'000;
inline constexpr std::size_t kHeaderSize = 5;  // type byte + length word (regular phase)

// A frame if `input` starts with a complete message, std::nullopt if more bytes are
// needed, Errc::Protocol if the length word is impossible (below 4, or above `max_size`
// for regular messages, or outside 8..kMaxStartupPacket for startup packets).
[[nodiscard]] Result<std::optional<Frame>> peek_frame(std::span<const std::byte> input, Phase phase,
                                                      std::uint32_t max_size);

// The length word of a regular-phase header at `p` (5 readable bytes). Hot-path helper.
inline std::uint32_t header_length(const std::byte* p) {
  return (std::uint32_t(p[1]) << 24) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 8) |
         std::uint32_t(p[4]);
}

}  // namespace pooler::wire
