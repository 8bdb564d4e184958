#pragma once
// A bounds-checked big-endian cursor over a message body. Failure is sticky: a read
// past the end sets !ok() and returns zero or empty, so decoders check once at the end.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace pooler::wire {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> data) : data_(data) {}

  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == data_.size(); }
  std::size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }

  std::uint8_t u8() {
    if (!need(1)) {
      return 0;
    }
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  std::uint16_t u16() {
    if (!need(2)) {
      return 0;
    }
    const auto v = static_cast<std::uint16_t>((byte_at(0) << 8) | byte_at(1));
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) {
      return 0;
    }
    const std::uint32_t v = (std::uint32_t{byte_at(0)} << 24) | (std::uint32_t{byte_at(1)} << 16) |
                            (std::uint32_t{byte_at(2)} << 8) | std::uint32_t{byte_at(3)};
    pos_ += 4;
    return v;
  }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::int16_t i16() { return static_cast<std::int16_t>(u16()); }

  // A NUL-terminated string; the terminator is consumed but not returned.
  std::string_view cstring() {
    if (!ok_ || pos_ == data_.size()) {
      ok_ = false;
      return {};
    }
    const auto* begin = reinterpret_cast<const char*>(data_.data()) + pos_;
    const auto* nul = static_cast<const char*>(std::memchr(begin, 0, data_.size() - pos_));
    if (nul == nullptr) {
      ok_ = false;
      return {};
    }
    const std::string_view s(begin, static_cast<std::size_t>(nul - begin));
    pos_ += s.size() + 1;
    return s;
  }

  std::span<const std::byte> bytes(std::size_t n) {
    if (!need(n)) {
      return {};
    }
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::byte> rest() { return bytes(remaining()); }

 private:
  bool need(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  unsigned byte_at(std::size_t i) const { return static_cast<unsigned>(data_[pos_ + i]); }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pooler::wire
