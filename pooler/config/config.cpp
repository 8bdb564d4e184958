#include "pooler/config/config.h"

#include <fmt/format.h>

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace pooler::config {
namespace {

bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool is_hex(char c) { return is_hex_lower(c) || (c >= 'A' && c <= 'F'); }

bool all_of(std::string_view text, bool (*pred)(char)) {
  for (char c : text) {
    if (!pred(c)) {
      return false;
    }
  }
  return true;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Decoded size of standard, padded base64 text; std::nullopt if it is not that.
std::optional<std::size_t> base64_decoded_size(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  if (!all_of(text.substr(0, text.size() - padding), is_base64_char)) {
    return std::nullopt;
  }
  return text.size() / 4 * 3 - padding;
}

// Checks "<iterations>:<salt>$<StoredKey>:<ServerKey>", the part after "SCRAM-SHA-256$"
// (the format PostgreSQL stores in pg_authid.rolpassword).
Result<void> check_scram_verifier(std::string_view rest) {
  const auto dollar = rest.find('$');
  const auto colon1 = rest.find(':');
  if (dollar == std::string_view::npos || colon1 == std::string_view::npos || colon1 > dollar) {
    return fail(Errc::Config,
                "malformed SCRAM-SHA-256 verifier: expected "
                "'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>'");
  }
  const std::string_view iterations = rest.substr(0, colon1);
  const std::string_view salt = rest.substr(colon1 + 1, dollar - colon1 - 1);
  const std::string_view keys = rest.substr(dollar + 1);
  const auto colon2 = keys.find(':');
  if (colon2 == std::string_view::npos) {
    return fail(Errc::Config,
                "malformed SCRAM-SHA-256 verifier: expected '<StoredKey>:<ServerKey>' after "
                "the salt");
  }
  int count = 0;
  const auto [end, ec] =
      std::from_chars(iterations.data(), iterations.data() + iterations.size(), count);
  if (iterations.empty() || ec != std::errc{} || end != iterations.data() + iterations.size() ||
      count <= 0) {
    return fail(Errc::Config, fmt::format("malformed SCRAM-SHA-256 verifier: iteration count "
                                          "'{}' is not a positive integer",
                                          iterations));
  }
  // The same bound as the SCRAM code (wire/scram.h), so a verifier the config accepts can be
  // used to log in; config/ does not depend on wire/.
  constexpr int kMaxIterations = 10'000'000;
  if (count > kMaxIterations) {
    return fail(Errc::Config, fmt::format("SCRAM-SHA-256 verifier: iteration count {} is above "
                                          "{}",
                                          count, kMaxIterations));
  }
  if (!base64_decoded_size(salt)) {
    return fail(Errc::Config, "malformed SCRAM-SHA-256 verifier: the salt is not base64");
  }
  // SHA-256 digests: 32 bytes each.
  for (std::string_view key : {keys.substr(0, colon2), keys.substr(colon2 + 1)}) {
    if (base64_decoded_size(key) != std::optional<std::size_t>(32)) {
      return fail(Errc::Config,
                  "malformed SCRAM-SHA-256 verifier: StoredKey and ServerKey must be 32 "
                  "bytes in base64");
    }
  }
  return {};
}

// Letters, digits, '.', '-' and '_': enough for DNS names and IPv4 literals.
bool is_hostname_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Inside brackets: hex digits, ':' and '.' (IPv4-mapped), optionally "%zone".
bool is_ipv6_literal(std::string_view text) {
  const auto zone = text.find('%');
  const std::string_view address = text.substr(0, zone);
  if (address.find(':') == std::string_view::npos) {
    return false;
  }
  for (char c : address) {
    if (!is_hex(c) && c != ':' && c != '.') {
      return false;
    }
  }
  if (zone != std::string_view::npos) {
    const std::string_view name = text.substr(zone + 1);
    return !name.empty() && all_of(name, is_hostname_char);
  }
  return true;
}

Result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) {
    return fail(Errc::Config, "missing port after ':'");
  }
  if (!all_of(text, [](char c) { return c >= '0' && c <= '9'; })) {
    return fail(Errc::Config, fmt::format("port '{}' is not a number", text));
  }
  unsigned long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || value < 1 || value > 65535) {
    return fail(Errc::Config, "port must be 1-65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string HostPort::to_string() const {
  if (!host.empty() && host.front() != '/' && host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort result;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return fail(Errc::Config, "missing ']' after the IPv6 address");
    }
    const std::string_view host = text.substr(1, close - 1);
    if (!is_ipv6_literal(host)) {
      return fail(Errc::Config, fmt::format("'{}' is not an IPv6 address", host));
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(Errc::Config, "missing ':port' after the IPv6 address");
    }
    result.host = host;
    port = text.substr(close + 2);
  } else {
    // The last ':' separates the port, so a Unix socket directory may contain ':'.
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail(Errc::Config, "missing ':port'");
    }
    const std::string_view host = text.substr(0, colon);
    if (host.empty()) {
      return fail(Errc::Config, "missing host before ':'");
    }
    if (!host.starts_with('/')) {
      if (host.find(':') != std::string_view::npos) {
        return fail(Errc::Config, "an IPv6 address must be in brackets, e.g. '[::1]:5432'");
      }
      if (!all_of(host, is_hostname_char)) {
        return fail(Errc::Config,
                    fmt::format("'{}' is not a host name, an IP address or an absolute Unix "
                                "socket directory",
                                host));
      }
    }
    result.host = host;
    port = text.substr(colon + 1);
  }
  auto number = parse_port(port);
  if (!number) {
    return std::unexpected(std::move(number.error()));
  }
  result.port = *number;
  return result;
}

std::string_view to_string(PoolMode mode) {
  switch (mode) {
    case PoolMode::Session: return "session";
    case PoolMode::Transaction: return "transaction";
    case PoolMode::Statement: return "statement";
  }
  return "unknown";
}

std::string_view to_string(AuthMethod method) {
  switch (method) {
    case AuthMethod::ScramSha256: return "scram-sha-256";
    case AuthMethod::Md5: return "md5";
    case AuthMethod::Trust: return "trust";
  }
  return "unknown";
}

std::string_view to_string(LogFormat format) {
  switch (format) {
    case LogFormat::Text: return "text";
    case LogFormat::Json: return "json";
  }
  return "unknown";
}

std::string_view to_string(SslMode mode) {
  switch (mode) {
    case SslMode::Disable: return "disable";
    case SslMode::Allow: return "allow";
    case SslMode::Prefer: return "prefer";
    case SslMode::Require: return "require";
    case SslMode::VerifyCa: return "verify-ca";
    case SslMode::VerifyFull: return "verify-full";
  }
  return "unknown";
}

std::string_view to_string(PasswordKind kind) {
  switch (kind) {
    case PasswordKind::Plain: return "plaintext";
    case PasswordKind::Md5: return "md5";
    case PasswordKind::ScramSha256: return "scram-sha-256";
  }
  return "unknown";
}

std::string_view to_string(HbaRule::Method method) {
  switch (method) {
    case HbaRule::Method::ScramSha256: return "scram-sha-256";
    case HbaRule::Method::Md5: return "md5";
    case HbaRule::Method::Trust: return "trust";
    case HbaRule::Method::Reject: return "reject";
    case HbaRule::Method::Cert: return "cert";
  }
  return "unknown";
}

namespace {

// An IP address in 16 bytes (IPv4 as ::ffff:a.b.c.d); false when `text` is not one.
bool parse_ip(std::string_view text, std::array<std::uint8_t, 16>& out, bool& v4) {
  const std::string s(text);
  in_addr a4{};
  in6_addr a6{};
  if (::inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    out = {};
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &a4, 4);
    v4 = true;
    return true;
  }
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(out.data(), &a6, 16);
    v4 = false;
    return true;
  }
  return false;
}

bool in_network(const std::array<std::uint8_t, 16>& ip, const HbaRule::Network& n) {
  int bits = n.prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((ip[i] & mask) != (n.address[i] & mask)) {
      return false;
    }
  }
  return true;
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::optional<HbaRule::Network> parse_network(std::string_view text) {
  const auto slash = text.find('/');
  HbaRule::Network n;
  bool v4 = false;
  if (!parse_ip(text.substr(0, slash), n.address, v4)) {
    return std::nullopt;
  }
  const int max = v4 ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > max) {
      return std::nullopt;
    }
  }
  n.prefix = v4 ? prefix + 96 : prefix;
  return n;
}

const HbaRule* match_hba(const std::vector<HbaRule>& rules, std::string_view database,
                         std::string_view user, std::string_view address) {
  std::array<std::uint8_t, 16> ip{};
  bool v4 = false;
  const bool has_ip = !address.empty() && parse_ip(address, ip, v4);
  for (const HbaRule& rule : rules) {
    if (!listed(rule.databases, database) || !listed(rule.users, user)) {
      continue;
    }
    if (rule.networks.empty() ||
        (has_ip && std::any_of(rule.networks.begin(), rule.networks.end(),
                               [&](const HbaRule::Network& n) { return in_network(ip, n); }))) {
      return &rule;
    }
  }
  return nullptr;
}

Result<PasswordKind> classify_password(std::string_view password) {
  constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";
  if (password.starts_with(kScramPrefix)) {
    if (auto checked = check_scram_verifier(password.substr(kScramPrefix.size())); !checked) {
      return std::unexpected(std::move(checked.error()));
    }
    return PasswordKind::ScramSha256;
  }
  // PostgreSQL treats "md5" + 32 lowercase hex digits as a hash. We also reject "md5"
  // followed by hex of the wrong length or case: a truncated or mangled hash far more
  // often than a real password.
  if (password.starts_with("md5")) {
    const std::string_view digest = password.substr(3);
    if (digest.size() == 32 && all_of(digest, is_hex_lower)) {
      return PasswordKind::Md5;
    }
    if (!digest.empty() && all_of(digest, is_hex)) {
      return fail(Errc::Config,
                  "malformed md5 hash: expected 'md5' followed by 32 lowercase hex "
                  "digits");
    }
  }
  return PasswordKind::Plain;
}

const DatabaseConfig* Config::find_database(std::string_view name) const {
  const auto it = databases.find(name);
  return it == databases.end() ? nullptr : &it->second;
}

const UserConfig* Config::find_user(std::string_view name) const {
  const auto it = users.find(name);
  return it == users.end() ? nullptr : &it->second;
}

}  // namespace pooler::config
