#pragma once
// PostgreSQL WAL positions (LSNs) as text: "16/B374D848", two hex numbers of 1-8 digits.
// Shared by the health checks (backend/) and the routing decisions (router/).

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pooler {

// "16/B374D848" -> 0x16B374D848; nullopt for anything else.
inline std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  const auto hex32 = [](std::string_view s) -> std::optional<std::uint32_t> {
    std::uint32_t v = 0;
    if (s.empty() || s.size() > 8) {
      return std::nullopt;
    }
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (ec != std::errc() || end != s.data() + s.size()) {
      return std::nullopt;
    }
    return v;
  };
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  const auto hi = hex32(text.substr(0, slash));
  const auto lo = hex32(text.substr(slash + 1));
  if (!hi || !lo) {
    return std::nullopt;
  }
  return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

}  // namespace pooler
