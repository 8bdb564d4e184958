#include "pooler/wire/write_buffer.h"

#include <cstring>

namespace pooler::wire {

MessageWriter WriteBuffer::begin_message(char type) {
  bytes_.push_back(static_cast<std::byte>(type));
  const std::size_t at = bytes_.size();
  bytes_.resize(at + 4);
  return MessageWriter(*this, at);
}

MessageWriter WriteBuffer::begin_untyped() {
  const std::size_t at = bytes_.size();
  bytes_.resize(at + 4);
  return MessageWriter(*this, at);
}

void WriteBuffer::append(std::span<const std::byte> raw) {
  bytes_.insert(bytes_.end(), raw.begin(), raw.end());
}

MessageWriter::~MessageWriter() {
  // The length word counts itself and the body, not the type byte.
  const auto length = static_cast<std::uint32_t>(out_.bytes_.size() - length_at_);
  std::byte* p = out_.bytes_.data() + length_at_;
  p[0] = static_cast<std::byte>(length >> 24);
  p[1] = static_cast<std::byte>(length >> 16);
  p[2] = static_cast<std::byte>(length >> 8);
  p[3] = static_cast<std::byte>(length);
}

MessageWriter& MessageWriter::u8(std::uint8_t v) {
  out_.bytes_.push_back(static_cast<std::byte>(v));
  return *this;
}

MessageWriter& MessageWriter::u16(std::uint16_t v) {
  u8(static_cast<std::uint8_t>(v >> 8));
  return u8(static_cast<std::uint8_t>(v));
}

MessageWriter& MessageWriter::u32(std::uint32_t v) {
  u16(static_cast<std::uint16_t>(v >> 16));
  return u16(static_cast<std::uint16_t>(v));
}

MessageWriter& MessageWriter::cstring(std::string_view s) {
  bytes(s);
  return u8(0);
}

MessageWriter& MessageWriter::bytes(std::span<const std::byte> b) {
  out_.append(b);
  return *this;
}

MessageWriter& MessageWriter::bytes(std::string_view s) {
  return bytes(std::as_bytes(std::span(s.data(), s.size())));
}

}  // namespace pooler::wire
