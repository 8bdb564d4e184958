#pragma once
// A minimal HTTP/1.1 request-head parser for the metrics endpoint: request line and
// headers up to the blank line, bounded in size. No bodies, no keep-alive. No I/O.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pooler::http {

inline constexpr std::size_t kMaxRequestHead = 8 * 1024;

struct Request {
  std::string method;  // "GET"
  std::string path;    // "/metrics", without the query string
};

enum class ParseStatus : std::uint8_t {
  Incomplete,  // no blank line yet: read more
  Complete,    // `out` is filled
  Bad,         // malformed request line
  TooLarge,    // no end of head within kMaxRequestHead
};

ParseStatus parse_request(std::string_view data, Request& out);

}  // namespace pooler::http
