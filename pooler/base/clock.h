#pragma once
// A monotonic millisecond clock for threads without an event loop (the index advisor, the
// auth_query lookup thread); loop threads use net::now_ms(loop), which reads no clock.

#include <chrono>
#include <cstdint>

namespace pooler {

inline std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace pooler
