#include "pooler/wire/frame.h"

#include <string>

namespace pooler::wire {

Result<std::optional<Frame>> peek_frame(std::span<const std::byte> input, Phase phase,
                                        std::uint32_t max_size) {
  const std::size_t header = phase == Phase::Startup ? 4 : kHeaderSize;
  if (input.size() < header) {
    return std::optional<Frame>{};
  }
  const std::byte* p = input.data();
  const std::size_t off = phase == Phase::Startup ? 0 : 1;
  const std::uint32_t length = (std::uint32_t(p[off]) << 24) | (std::uint32_t(p[off + 1]) << 16) |
                               (std::uint32_t(p[off + 2]) << 8) | std::uint32_t(p[off + 3]);
  if (phase == Phase::Startup) {
    if (length < 8 || length > kMaxStartupPacket) {
      return fail(Errc::Protocol, "invalid length of startup packet: " + std::to_string(length));
    }
  } else {
    if (length < 4) {
      return fail(Errc::Protocol, "invalid message length " + std::to_string(length));
    }
    if (length > max_size) {
      return fail(Errc::Protocol, "message of " + std::to_string(length) +
                                      " bytes exceeds max_message_size (" +
                                      std::to_string(max_size) + ")");
    }
  }
  const std::size_t total = off + std::size_t{length};
  if (input.size() < total) {
    return std::optional<Frame>{};
  }
  Frame f;
  f.type = phase == Phase::Startup ? 0 : static_cast<char>(p[0]);
  f.body = input.subspan(off + 4, length - 4);
  f.size_on_wire = total;
  return f;
}

}  // namespace pooler::wire
