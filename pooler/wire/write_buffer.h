#pragma once
// Append-only output buffer for messages pgmux originates. Lengths are never computed by
// hand: begin_message() reserves the length word and the returned writer patches it when
// it goes out of scope.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace pooler::wire {

class WriteBuffer;

// Writes one message's body; patches the length word on destruction.
class MessageWriter {
 public:
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;
  ~MessageWriter();

  MessageWriter& u8(std::uint8_t v);
  MessageWriter& u16(std::uint16_t v);
  MessageWriter& u32(std::uint32_t v);
  MessageWriter& i16(std::int16_t v) { return u16(static_cast<std::uint16_t>(v)); }
  MessageWriter& i32(std::int32_t v) { return u32(static_cast<std::uint32_t>(v)); }
  MessageWriter& cstring(std::string_view s);  // appends s and a NUL
  MessageWriter& bytes(std::span<const std::byte> b);
  MessageWriter& bytes(std::string_view s);

 private:
  friend class WriteBuffer;
  MessageWriter(WriteBuffer& out, std::size_t length_at) : out_(out), length_at_(length_at) {}
  WriteBuffer& out_;
  std::size_t length_at_;
};

class WriteBuffer {
 public:
  // A regular message: type byte, then the length word.
  [[nodiscard]] MessageWriter begin_message(char type);
  // A startup-phase packet (StartupMessage, SSLRequest, CancelRequest): no type byte.
  [[nodiscard]] MessageWriter begin_untyped();

  void append(std::span<const std::byte> raw);
  std::span<const std::byte> data() const { return bytes_; }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  void clear() { bytes_.clear(); }
  std::vector<std::byte> take() { return std::exchange(bytes_, {}); }

 private:
  friend class MessageWriter;
  std::vector<std::byte> bytes_;
};

}  // namespace pooler::wire
