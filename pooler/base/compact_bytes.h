#pragma once
// A byte buffer behind one pointer: its size and capacity live in the heap block in front
// of the bytes, so an empty one costs its owner 8 bytes and no allocation. Made for a
// client's input that waits (an incomplete frame, frames queued for a backend): thousands
// of idle clients hold one each, almost always empty. Move-only.

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace pooler {

class CompactBytes {
 public:
  CompactBytes() = default;
  CompactBytes(CompactBytes&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  CompactBytes& operator=(CompactBytes&& other) noexcept {
    if (this != &other) {
      std::free(block_);
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  CompactBytes(const CompactBytes&) = delete;
  CompactBytes& operator=(const CompactBytes&) = delete;
  ~CompactBytes() { std::free(block_); }

  bool empty() const { return size() == 0; }
  std::size_t size() const { return block_ != nullptr ? block_->size : 0; }
  std::span<const std::byte> view() const {
    return block_ != nullptr ? std::span<const std::byte>(block_->bytes(), block_->size)
                             : std::span<const std::byte>();
  }

  void append(std::span<const std::byte> bytes) {
    if (bytes.empty()) {
      return;
    }
    const std::size_t need = size() + bytes.size();
    if (block_ == nullptr || need > block_->capacity) {
      grow(need);
    }
    std::memcpy(block_->bytes() + block_->size, bytes.data(), bytes.size());
    block_->size = need;
  }

  // Drops the first n bytes (n <= size()), keeping the memory for what follows.
  void erase_front(std::size_t n) {
    if (n == 0) {
      return;
    }
    if (n >= size()) {
      clear();
      return;
    }
    std::memmove(block_->bytes(), block_->bytes() + n, block_->size - n);
    block_->size -= n;
  }

  // Empties the buffer and gives its memory back.
  void clear() {
    std::free(block_);
    block_ = nullptr;
  }

 private:
  struct Block {
    std::size_t size;
    std::size_t capacity;
    std::byte* bytes() { return reinterpret_cast<std::byte*>(this + 1); }
  };

  void grow(std::size_t need) {
    std::size_t capacity = block_ != nullptr ? block_->capacity * 2 : 0;
    if (capacity < need) {
      capacity = need;
    }
    auto* grown = static_cast<Block*>(std::realloc(block_, sizeof(Block) + capacity));
    if (grown == nullptr) {
      throw std::bad_alloc();
    }
    if (block_ == nullptr) {
      grown->size = 0;
    }
    grown->capacity = capacity;
    block_ = grown;
  }

  Block* block_ = nullptr;
};

}  // namespace pooler
