#pragma once
// A worker's client sessions in numbered slots. A slot number is small and dense, so it is
// also the cancel key's pid (with the worker index in the top bits): no hash map per
// client, which matters at tens of thousands of idle clients. Loop thread only.

#include <cstdint>
#include <memory>
#include <vector>

#include "pooler/client/client_session.h"

namespace pooler::app {

class ClientTable {
 public:
  // The slot the next insert() will use.
  std::uint32_t next_slot() const {
    return free_.empty() ? static_cast<std::uint32_t>(slots_.size()) : free_.back();
  }
  client::ClientSession* insert(std::unique_ptr<client::ClientSession> session) {
    const std::uint32_t slot = next_slot();
    if (free_.empty()) {
      slots_.push_back(std::move(session));
    } else {
      free_.pop_back();
      slots_[slot] = std::move(session);
    }
    ++count_;
    return slots_[slot].get();
  }
  client::ClientSession* get(std::uint32_t slot) const {
    return slot < slots_.size() ? slots_[slot].get() : nullptr;
  }
  std::unique_ptr<client::ClientSession> take(std::uint32_t slot) {
    if (slot >= slots_.size() || !slots_[slot]) {
      return nullptr;
    }
    free_.push_back(slot);
    --count_;
    return std::move(slots_[slot]);
  }
  std::size_t size() const { return count_; }
  // The sessions now present; safe to act on while sessions close (check `get` again).
  std::vector<client::ClientSession*> snapshot() const {
    std::vector<client::ClientSession*> out;
    out.reserve(count_);
    for (const auto& s : slots_) {
      if (s) {
        out.push_back(s.get());
      }
    }
    return out;
  }

 private:
  std::vector<std::unique_ptr<client::ClientSession>> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t count_ = 0;
};

}  // namespace pooler::app
