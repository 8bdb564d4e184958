#include "pooler/http/http_request.h"

#include <cstdint>

namespace pooler::http {

ParseStatus parse_request(std::string_view data, Request& out) {
  const auto end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return data.size() > kMaxRequestHead ? ParseStatus::TooLarge : ParseStatus::Incomplete;
  }
  if (end > kMaxRequestHead) {
    return ParseStatus::TooLarge;
  }
  // Request-line = method SP request-target SP HTTP-version (RFC 9112, section 3).
  const std::string_view line = data.substr(0, data.find("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find(' ', sp2 + 1) != std::string_view::npos ||
      !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    return ParseStatus::Bad;
  }
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.front() != '/') {
    return ParseStatus::Bad;
  }
  target = target.substr(0, target.find('?'));
  out.method = std::string(line.substr(0, sp1));
  out.path = std::string(target);
  return ParseStatus::Complete;
}

}  // namespace pooler::http
