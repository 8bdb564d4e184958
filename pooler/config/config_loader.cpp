#include "pooler/config/config_loader.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

namespace pooler::config {
namespace {

constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
// Timeouts above this (~31 years) are surely mistakes; the cap also keeps the
// conversion to milliseconds far from overflow.
constexpr std::int64_t kMaxSeconds = 1'000'000'000;
// A limit below 1 KiB would reject ordinary ErrorResponse and ParameterStatus messages;
// PostgreSQL itself never sends or accepts more than 1 GiB in one message.
constexpr std::int64_t kMinMessageSize = 1024;
constexpr std::int64_t kMaxMessageSize = 1024 * 1024 * 1024;
constexpr std::size_t kMaxReported = 20;
const HostPort kDefaultListen{"127.0.0.1", 6432};

template <typename E>
struct Choice {
  std::string_view name;
  E value;
};

constexpr std::array<Choice<PoolMode>, 3> kPoolModes{{
    {"session", PoolMode::Session},
    {"transaction", PoolMode::Transaction},
    {"statement", PoolMode::Statement},
}};
constexpr std::array<Choice<AuthMethod>, 3> kAuthMethods{{
    {"scram-sha-256", AuthMethod::ScramSha256},
    {"md5", AuthMethod::Md5},
    {"trust", AuthMethod::Trust},
}};
constexpr std::array<Choice<LogFormat>, 2> kLogFormats{{
    {"text", LogFormat::Text},
    {"json", LogFormat::Json},
}};
constexpr std::array<Choice<SslMode>, 6> kSslModes{{
    {"disable", SslMode::Disable},
    {"allow", SslMode::Allow},
    {"prefer", SslMode::Prefer},
    {"require", SslMode::Require},
    {"verify-ca", SslMode::VerifyCa},
    {"verify-full", SslMode::VerifyFull},
}};
// spdlog's level names.
constexpr std::array<Choice<std::string_view>, 7> kLogLevels{{
    {"trace", "trace"},
    {"debug", "debug"},
    {"info", "info"},
    {"warning", "warning"},
    {"error", "error"},
    {"critical", "critical"},
    {"off", "off"},
}};
constexpr std::array<std::pair<std::string_view, Millis Timeouts::*>, 7> kTimeoutKeys{{
    {"query_wait_timeout", &Timeouts::query_wait_timeout},
    {"idle_transaction_timeout", &Timeouts::idle_transaction_timeout},
    {"client_idle_timeout", &Timeouts::client_idle_timeout},
    {"client_login_timeout", &Timeouts::client_login_timeout},
    {"server_connect_timeout", &Timeouts::server_connect_timeout},
    {"server_lifetime", &Timeouts::server_lifetime},
    {"server_idle_timeout", &Timeouts::server_idle_timeout},
}};

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
  }
  return "unknown";
}

// A key as it would be written in a table header: bare when it can be, else quoted.
std::string toml_key(std::string_view key) {
  const bool bare = !key.empty() && std::ranges::all_of(key, [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (bare) {
    return std::string(key);
  }
  std::string quoted = "\"";
  for (char c : key) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
    }
    quoted += c;
  }
  return quoted + '"';
}

// "[databases.app]"
std::string section_name(std::string_view parent, std::string_view key) {
  return fmt::format("[{}.{}]", parent, toml_key(key));
}

// Collects every problem instead of stopping at the first, so that one run shows all the
// typos in a file; they are reported in file order.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view source) : source_(source) {}

  void error(const toml::source_region& where, std::string message) {
    // Parsed nodes always have a position; 1:1 is only a fallback.
    entries_.push_back(Entry{std::max<toml::source_index>(where.begin.line, 1),
                             std::max<toml::source_index>(where.begin.column, 1),
                             std::move(message)});
  }

  bool empty() const { return entries_.empty(); }

  Error to_error() {
    std::ranges::stable_sort(entries_, [](const Entry& a, const Entry& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    std::string text;
    for (std::size_t i = 0; i < entries_.size() && i < kMaxReported; ++i) {
      const Entry& entry = entries_[i];
      text += fmt::format("{}{}:{}:{}: {}", i == 0 ? "" : "\n", source_, entry.line, entry.column,
                          entry.message);
    }
    if (entries_.size() > kMaxReported) {
      text +=
          fmt::format("\n{}: {} more errors not shown", source_, entries_.size() - kMaxReported);
    }
    return Error{Errc::Config, std::move(text)};
  }

 private:
  struct Entry {
    toml::source_index line;
    toml::source_index column;
    std::string message;
  };
  std::string_view source_;
  std::vector<Entry> entries_;
};

// Reads the keys of one TOML table with type and range checks. Each key looked up
// becomes known; report_unknown_keys() flags the rest, which are typos.
// Every reader returns std::nullopt both when the key is absent and when it is invalid
// (the problem is then already reported), so callers keep their default.
class TableReader {
 public:
  // `name` is "[databases.app]", or "" for the top level.
  TableReader(const toml::table& table, std::string name, Diagnostics& diag)
      : table_(table), name_(std::move(name)), diag_(diag) {}

  const toml::node* get(std::string_view key) {
    known_.emplace(key);
    return table_.get(key);
  }

  bool has(std::string_view key) const { return table_.contains(key); }

  // Reports the key as missing (at the table's position) unless it is present.
  bool require(std::string_view key, std::string_view hint = {}) {
    if (has(key)) {
      return true;
    }
    diag_.error(table_.source(),
                fmt::format("{} is missing required key '{}'{}", name_, key, hint));
    return false;
  }

  void report_unknown_keys(std::string_view hint = {}) {
    for (auto&& [key, node] : table_) {
      if (!known_.contains(key.str())) {
        diag_.error(key.source(),
                    fmt::format("unknown key '{}' {}{}", key.str(),
                                name_.empty() ? "at top level" : "in " + name_, hint));
      }
    }
  }

  const toml::table* table(std::string_view key) {
    const toml::node* node = get(key);
    if (node != nullptr && !node->is_table()) {
      type_error(key, *node, "a table");
      return nullptr;
    }
    return node == nullptr ? nullptr : node->as_table();
  }

  std::optional<std::string> string(std::string_view key, bool allow_empty = false) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    const auto* value = node->as_string();
    if (value == nullptr) {
      type_error(key, *node, "a string");
      return std::nullopt;
    }
    if (!allow_empty && value->get().empty()) {
      diag_.error(node->source(), fmt::format("'{}' must not be empty", key));
      return std::nullopt;
    }
    return value->get();
  }

  // An array of non-empty strings; `what` names them in the error ("user names").
  std::optional<std::vector<std::string>> strings(std::string_view key, std::string_view what) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    std::vector<std::string> out;
    const auto* array = node->as_array();
    bool ok = array != nullptr;
    for (std::size_t i = 0; ok && i < array->size(); ++i) {
      const auto* item = array->get(i)->as_string();
      ok = item != nullptr && !item->get().empty();
      if (ok) {
        out.push_back(item->get());
      }
    }
    if (!ok) {
      diag_.error(node->source(), fmt::format("'{}' must be an array of {}", key, what));
      return std::nullopt;
    }
    return out;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    const auto* value = node->as_integer();
    if (value == nullptr) {
      type_error(key, *node, "an integer");
      return std::nullopt;
    }
    const std::int64_t number = value->get();
    if (number >= min && number <= max) {
      return number;
    }
    if (max < kIntMax) {
      diag_.error(node->source(), fmt::format("'{}' must be {}-{}, got {}", key, min, max, number));
    } else if (number < min) {
      diag_.error(node->source(),
                  fmt::format("'{}' must be at least {}, got {}", key, min, number));
    } else {
      diag_.error(node->source(), fmt::format("'{}' must be at most {}, got {}", key, max, number));
    }
    return std::nullopt;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      type_error(key, *node, "true or false");
      return std::nullopt;
    }
    return value->get();
  }

  // An integer or a float within [min, max].
  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    double value = 0;
    if (const auto* integer = node->as_integer()) {
      value = static_cast<double>(integer->get());
    } else if (const auto* floating = node->as_floating_point()) {
      value = floating->get();
    } else {
      type_error(key, *node, "a number");
      return std::nullopt;
    }
    if (std::isnan(value) || value < min || value > max) {
      diag_.error(node->source(), fmt::format("'{}' must be {}-{}, got {}", key, min, max, value));
      return std::nullopt;
    }
    return value;
  }

  // An integer or a float, in seconds ("0.5"); rounded to milliseconds.
  std::optional<Millis> seconds(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    double value = 0;
    std::string shown;
    if (const auto* integer = node->as_integer()) {
      value = static_cast<double>(integer->get());
      shown = fmt::format("{}", integer->get());
    } else if (const auto* floating = node->as_floating_point()) {
      value = floating->get();
      shown = fmt::format("{}", floating->get());
    } else {
      type_error(key, *node, "a number of seconds");
      return std::nullopt;
    }
    if (std::isnan(value) || value < 0) {
      diag_.error(node->source(),
                  fmt::format("'{}' must be a non-negative number of seconds, got {}", key, shown));
      return std::nullopt;
    }
    if (value > static_cast<double>(kMaxSeconds)) {
      diag_.error(node->source(),
                  fmt::format("'{}' must be at most {} seconds, got {}", key, kMaxSeconds, shown));
      return std::nullopt;
    }
    auto millis = std::llround(value * 1000.0);
    if (millis == 0 && value > 0) {
      millis = 1;  // a tiny positive timeout must not turn into "disabled"
    }
    return Millis{millis};
  }

  template <typename E, std::size_t N>
  std::optional<E> choice(std::string_view key, const std::array<Choice<E>, N>& options) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    const auto* value = node->as_string();
    if (value == nullptr) {
      type_error(key, *node, "a string");
      return std::nullopt;
    }
    std::string names;
    for (const Choice<E>& option : options) {
      if (option.name == value->get()) {
        return option.value;
      }
      names += fmt::format("{}{}", names.empty() ? "" : ", ", option.name);
    }
    diag_.error(node->source(),
                fmt::format("'{}' must be one of {}; got '{}'", key, names, value->get()));
    return std::nullopt;
  }

  // One "host:port" string.
  std::optional<HostPort> address(std::string_view key) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    if (!node->is_string()) {
      type_error(key, *node, "a \"host:port\" string");
      return std::nullopt;
    }
    return parse_address(key, *node);
  }

  // One "host:port" string or an array of them; no address may appear twice.
  std::optional<std::vector<HostPort>> addresses(std::string_view key, bool allow_empty) {
    const toml::node* node = get(key);
    if (node == nullptr) {
      return std::nullopt;
    }
    std::vector<const toml::node*> items;
    if (node->is_string()) {
      items.push_back(node);
    } else if (const auto* array = node->as_array()) {
      for (const toml::node& item : *array) {
        items.push_back(&item);
      }
    } else {
      type_error(key, *node, "a \"host:port\" string or an array of them");
      return std::nullopt;
    }
    if (items.empty() && !allow_empty) {
      diag_.error(node->source(), fmt::format("'{}' must name at least one address", key));
      return std::nullopt;
    }
    std::vector<HostPort> result;
    bool ok = true;
    for (const toml::node* item : items) {
      if (!item->is_string()) {
        diag_.error(item->source(),
                    fmt::format("'{}' entries must be \"host:port\" strings, got {}", key,
                                type_name(item->type())));
        ok = false;
        continue;
      }
      auto parsed = parse_address(key, *item);
      if (!parsed) {
        ok = false;
        continue;
      }
      const bool duplicate = std::ranges::any_of(result, [&](const HostPort& seen) {
        return seen.host == parsed->host && seen.port == parsed->port;
      });
      if (duplicate) {
        diag_.error(item->source(),
                    fmt::format("duplicate address '{}' in '{}'", parsed->to_string(), key));
        ok = false;
        continue;
      }
      result.push_back(std::move(*parsed));
    }
    return ok ? std::optional(std::move(result)) : std::nullopt;
  }

  // For cross-field checks: where `key` is, given that it is present.
  const toml::source_region& source_of(std::string_view key) const {
    return table_.get(key)->source();
  }

 private:
  void type_error(std::string_view key, const toml::node& node, std::string_view expected) {
    diag_.error(node.source(),
                fmt::format("'{}' must be {}, got {}", key, expected, type_name(node.type())));
  }

  std::optional<HostPort> parse_address(std::string_view key, const toml::node& node) {
    const std::string& text = node.as_string()->get();
    auto parsed = parse_host_port(text);
    if (!parsed) {
      diag_.error(node.source(),
                  fmt::format("bad address '{}' in '{}': {}", text, key, parsed.error().message));
      return std::nullopt;
    }
    return std::move(*parsed);
  }

  const toml::table& table_;
  std::string name_;
  Diagnostics& diag_;
  std::set<std::string, std::less<>> known_;
};

void read_timeouts(TableReader& in, Timeouts& out) {
  for (const auto& [key, member] : kTimeoutKeys) {
    if (auto value = in.seconds(key)) {
      out.*member = *value;
    }
  }
}

// "secure" (TLS 1.2 and 1.3, the default), "all" (1.0 to 1.3), or a list of versions
// ("tlsv1.2,tlsv1.3"); the result is the range from the lowest to the highest named.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_protocols(std::string_view text) {
  static constexpr std::pair<std::string_view, std::uint16_t> kVersions[] = {
      {"tlsv1", 0x0301},   {"tlsv1.0", 0x0301}, {"tlsv1.1", 0x0302},
      {"tlsv1.2", 0x0303}, {"tlsv1.3", 0x0304}};
  if (text == "secure") {
    return std::pair<std::uint16_t, std::uint16_t>{0x0303, 0x0304};
  }
  if (text == "all") {
    return std::pair<std::uint16_t, std::uint16_t>{0x0301, 0x0304};
  }
  std::uint16_t low = 0xffff;
  std::uint16_t high = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find_first_of(", ", pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    const std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) {
      continue;
    }
    const auto* found = std::ranges::find_if(kVersions, [&](const auto& v) { return v.first == word; });
    if (found == std::end(kVersions)) {
      return std::nullopt;
    }
    low = std::min(low, found->second);
    high = std::max(high, found->second);
  }
  if (high == 0) {
    return std::nullopt;
  }
  return std::pair{low, high};
}

// The TLS keys of [pgmux] (`general` = true) or of a database, over `out`'s current values.
// client_tls_mode / server_tls_mode are accepted as other names of the sslmode keys.
void read_tls(TableReader& in, TlsConfig& out, bool general, Diagnostics& diag) {
  auto mode = [&](std::string_view key, std::string_view alias, SslMode& field) {
    if (in.has(key) && in.has(alias)) {
      diag.error(in.source_of(alias), fmt::format("give '{}' or '{}', not both", key, alias));
    }
    if (auto v = in.choice(key, kSslModes)) {
      field = *v;
    }
    if (auto v = in.choice(alias, kSslModes)) {
      field = *v;
    }
  };
  mode("client_tls_sslmode", "client_tls_mode", out.client_sslmode);
  mode("server_tls_sslmode", "server_tls_mode", out.server_sslmode);
  const std::pair<std::string_view, std::string TlsConfig::*> files[] = {
      {"client_tls_ca_file", &TlsConfig::client_ca_file},
      {"server_tls_ca_file", &TlsConfig::server_ca_file},
      {"server_tls_cert_file", &TlsConfig::server_cert_file},
      {"server_tls_key_file", &TlsConfig::server_key_file},
      {"client_tls_cert_file", &TlsConfig::client_cert_file},
      {"client_tls_key_file", &TlsConfig::client_key_file},
      {"client_tls_ciphers", &TlsConfig::client_ciphers}};
  for (const auto& [key, member] : files) {
    const bool handshake_only = key == "client_tls_cert_file" || key == "client_tls_key_file" ||
                                key == "client_tls_ciphers";
    if (!general && handshake_only && in.has(key)) {
      in.get(key);
      diag.error(in.source_of(key),
                 fmt::format("'{}' can be set only in [pgmux]: the TLS handshake happens before "
                             "the client names its database",
                             key));
      continue;
    }
    if (auto v = in.string(key)) {
      out.*member = std::move(*v);
    }
  }
  if (!general && in.has("client_tls_protocols")) {
    in.get("client_tls_protocols");
    diag.error(in.source_of("client_tls_protocols"),
               "'client_tls_protocols' can be set only in [pgmux]: the TLS handshake happens "
               "before the client names its database");
  } else if (auto text = in.string("client_tls_protocols")) {
    if (auto range = parse_protocols(*text)) {
      out.client_min_protocol = range->first;
      out.client_max_protocol = range->second;
    } else {
      diag.error(in.source_of("client_tls_protocols"),
                 fmt::format("'client_tls_protocols' must be \"secure\", \"all\" or a list of "
                             "tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3; got '{}'",
                             *text));
    }
  }
}

// Cross-key checks of the TLS settings in effect for [pgmux] or for one database.
void check_tls(TableReader& in, const TlsConfig& tls, const TlsConfig& general, Diagnostics& diag) {
  auto where = [&](std::string_view key, std::string_view alias) -> const toml::source_region& {
    return in.source_of(in.has(alias) ? alias : key);
  };
  const bool client_mode_here = in.has("client_tls_sslmode") || in.has("client_tls_mode");
  if (client_mode_here && tls.client_sslmode != SslMode::Disable &&
      (general.client_cert_file.empty() || general.client_key_file.empty())) {
    diag.error(where("client_tls_sslmode", "client_tls_mode"),
               fmt::format("client_tls_sslmode = \"{}\" needs 'client_tls_cert_file' and "
                           "'client_tls_key_file' in [pgmux]",
                           to_string(tls.client_sslmode)));
  }
  if (client_mode_here && tls.client_sslmode >= SslMode::VerifyCa && tls.client_ca_file.empty()) {
    diag.error(where("client_tls_sslmode", "client_tls_mode"),
               fmt::format("client_tls_sslmode = \"{}\" needs 'client_tls_ca_file'",
                           to_string(tls.client_sslmode)));
  }
  const bool server_mode_here = in.has("server_tls_sslmode") || in.has("server_tls_mode");
  if (server_mode_here && tls.server_sslmode >= SslMode::VerifyCa && tls.server_ca_file.empty()) {
    diag.error(where("server_tls_sslmode", "server_tls_mode"),
               fmt::format("server_tls_sslmode = \"{}\" needs 'server_tls_ca_file'",
                           to_string(tls.server_sslmode)));
  }
  if (in.has("server_tls_cert_file") != in.has("server_tls_key_file") &&
      tls.server_cert_file.empty() != tls.server_key_file.empty()) {
    diag.error(in.source_of(in.has("server_tls_cert_file") ? "server_tls_cert_file"
                                                           : "server_tls_key_file"),
               "'server_tls_cert_file' and 'server_tls_key_file' go together");
  }
  if (&tls == &general && in.has("client_tls_cert_file") != in.has("client_tls_key_file")) {
    diag.error(in.source_of(in.has("client_tls_cert_file") ? "client_tls_cert_file"
                                                           : "client_tls_key_file"),
               "'client_tls_cert_file' and 'client_tls_key_file' go together");
  }
}

void read_general(const toml::table& table, GeneralConfig& out, Diagnostics& diag) {
  TableReader in(table, "[pgmux]", diag);
  if (auto listen = in.addresses("listen", /*allow_empty=*/false)) {
    out.listen = std::move(*listen);
  }
  if (auto workers = in.integer("workers", 0, 256)) {
    out.workers = static_cast<int>(*workers);
  }
  if (auto level = in.choice("log_level", kLogLevels)) {
    out.log_level = *level;
  }
  if (auto format = in.choice("log_format", kLogFormats)) {
    out.log_format = *format;
  }
  if (auto max_conn = in.integer("max_client_conn", 1, kIntMax)) {
    out.max_client_conn = static_cast<int>(*max_conn);
  }
  if (auto n = in.integer("max_client_conn_per_address", 0, kIntMax)) {
    out.max_client_conn_per_address = static_cast<int>(*n);
  }
  if (auto rate = in.number("max_connection_rate_per_address", 0, 1e9)) {
    out.max_connection_rate_per_address = *rate;
  }
  if (auto n = in.integer("max_login_failures_per_address", 0, kIntMax)) {
    out.max_login_failures_per_address = static_cast<int>(*n);
  }
  if (auto n = in.integer("max_user_client_connections", 0, kIntMax)) {
    out.max_user_client_connections = static_cast<int>(*n);
  }
  if (auto rate = in.number("max_user_query_rate", 0, 1e9)) {
    out.max_user_query_rate = *rate;
  }
  if (auto wait = in.seconds("query_rate_wait")) {
    out.query_rate_wait = *wait;
  }
  out.auth_user = in.string("auth_user");
  if (auto query = in.string("auth_query")) {
    out.auth_query = std::move(*query);
  }
  if (auto ttl = in.seconds("auth_cache_ttl")) {
    out.auth_cache_ttl = *ttl;
  }
  if (auto size = in.integer("max_message_size", kMinMessageSize, kMaxMessageSize)) {
    out.max_message_size = static_cast<std::uint32_t>(*size);
  }
  if (auto timeout = in.seconds("shutdown_timeout")) {
    out.shutdown_timeout = *timeout;
  }
  if (auto period = in.seconds("stats_period")) {
    out.stats_period = *period;
  }
  read_timeouts(in, out.timeouts);
  if (auto admins = in.strings("admin_users", "user names")) {
    out.admin_users = std::move(*admins);
  }
  if (auto stats = in.boolean("query_stats")) {
    out.query_stats = *stats;
  }
  if (auto queries = in.boolean("log_queries")) {
    out.log_queries = *queries;
  }
  if (auto shapes = in.integer("max_query_shapes", 16, 1'000'000)) {
    out.max_query_shapes = static_cast<int>(*shapes);
  }
  if (auto http = in.addresses("http_listen", /*allow_empty=*/false)) {
    if (http->size() != 1) {
      diag.error(in.source_of("http_listen"), "'http_listen' must be one \"host:port\"");
    } else {
      out.http_listen = std::move(http->front());
    }
  }
  if (auto wait = in.boolean("wait_for_primary")) {
    out.wait_for_primary = *wait;
  }
  read_tls(in, out.tls, /*general=*/true, diag);
  check_tls(in, out.tls, out.tls, diag);
  in.report_unknown_keys();
}

void read_hba(const toml::node& node, std::vector<HbaRule>& out, Diagnostics& diag) {
  static constexpr std::array<Choice<HbaRule::Method>, 5> kMethods{{
      {"scram-sha-256", HbaRule::Method::ScramSha256},
      {"md5", HbaRule::Method::Md5},
      {"trust", HbaRule::Method::Trust},
      {"reject", HbaRule::Method::Reject},
      {"cert", HbaRule::Method::Cert},
  }};
  const auto* array = node.as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    diag.error(node.source(), "hba must be an array of tables: [[hba]]");
    return;
  }
  int index = 0;
  for (const auto& item : *array) {
    ++index;
    const toml::table& table = *item.as_table();
    TableReader in(table, fmt::format("[[hba]] #{}", index), diag);
    HbaRule rule;
    rule.index = index;
    // "all" (or absent) = every one; "name"; or ["a", "b"].
    auto list = [&](std::string_view key, std::vector<std::string>& into) {
      const toml::node* n = table.get(key);
      std::optional<std::vector<std::string>> names;
      if (n != nullptr && n->is_array()) {
        names = in.strings(key, "names");
      } else if (auto one = in.string(key)) {
        names = std::vector<std::string>{*one};
      }
      if (names && std::find(names->begin(), names->end(), "all") == names->end()) {
        into = std::move(*names);
      }
    };
    list("database", rule.databases);
    list("user", rule.users);
    std::vector<std::string> addresses;
    list("address", addresses);
    for (const auto& a : addresses) {
      if (auto n = parse_network(a)) {
        rule.networks.push_back(*n);
      } else {
        diag.error(in.source_of("address"),
                   fmt::format("'address' must be an IP address or network (\"10.0.0.0/8\", "
                               "\"::1/128\") or \"all\", got '{}'", a));
      }
    }
    if (in.require("method", " (scram-sha-256, md5, trust, reject or cert)")) {
      if (auto method = in.choice("method", kMethods)) {
        rule.method = *method;
      }
    }
    in.report_unknown_keys();
    out.push_back(std::move(rule));
  }
}

void read_index_advice(const toml::table& table, IndexAdviceConfig& out, Diagnostics& diag) {
  TableReader in(table, "[index_advice]", diag);
  static constexpr std::array<Choice<IndexAdviceConfig::Target>, 2> kTargets{{
      {"primary", IndexAdviceConfig::Target::Primary},
      {"replica", IndexAdviceConfig::Target::Replica},
  }};
  if (auto enabled = in.boolean("enabled")) {
    out.enabled = *enabled;
  }
  if (auto file = in.string("file", /*allow_empty=*/true)) {
    out.file = std::move(*file);
  }
  if (auto target = in.choice("target", kTargets)) {
    out.target = *target;
  }
  out.user = in.string("user");
  out.password = in.string("password", /*allow_empty=*/true);
  if (out.password && !out.user) {
    diag.error(in.source_of("password"), "'password' in [index_advice] needs 'user'");
  }
  if (auto calls = in.integer("min_calls", 1, kIntMax)) {
    out.min_calls = *calls;
  }
  if (auto duration = in.seconds("min_duration")) {
    out.min_duration = *duration;
  }
  if (auto interval = in.seconds("recheck_interval")) {
    out.recheck_interval = *interval;
  }
  if (auto rate = in.integer("explain_rate", 1, 1000)) {
    out.explain_rate = static_cast<int>(*rate);
  }
  if (auto pages = in.integer("min_table_pages", 0, kIntMax)) {
    out.min_table_pages = *pages;
  }
  if (auto rows = in.integer("min_table_rows", 0, kIntMax)) {
    out.min_table_rows = *rows;
  }
  if (auto share = in.number("max_selectivity", 0.0, 1.0)) {
    out.max_selectivity = *share;
  }
  if (auto timeout = in.seconds("statement_timeout")) {
    out.statement_timeout = *timeout;
  }
  if (auto queue = in.integer("sample_queue", 1, 100'000)) {
    out.sample_queue = static_cast<int>(*queue);
  }
  in.report_unknown_keys();
}

// "16MB", "512kB", "1GB", "500ms", "2s", or a bare integer (bytes).
std::optional<std::pair<std::int64_t, bool>> parse_lag(std::string_view text) {
  std::int64_t number = 0;
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    number = number * 10 + (text[i] - '0');
    if (number > (std::int64_t{1} << 50)) {
      return std::nullopt;
    }
    ++i;
  }
  if (i == 0) {
    return std::nullopt;
  }
  std::string unit(text.substr(i));
  std::erase(unit, ' ');
  static constexpr std::pair<std::string_view, std::int64_t> kBytes[] = {
      {"", 1}, {"B", 1}, {"kB", 1024}, {"KB", 1024}, {"MB", 1024 * 1024}, {"GB", 1024 * 1024 * 1024}};
  for (const auto& [u, mult] : kBytes) {
    if (unit == u) {
      if (number > std::numeric_limits<std::int64_t>::max() / mult) {
        return std::nullopt;  // "10000000000GB" would overflow int64
      }
      return std::pair{number * mult, true};
    }
  }
  if (unit == "ms") {
    return std::pair{number, false};
  }
  if (unit == "s") {
    return std::pair{number * 1000, false};
  }
  return std::nullopt;
}

void read_routing(TableReader& in, DatabaseConfig& db, Diagnostics& diag) {
  RoutingConfig& r = db.routing;
  static constexpr std::array<Choice<RoutingConfig::PrimaryReads>, 3> kPrimaryReads{{
      {"never", RoutingConfig::PrimaryReads::Never},
      {"fallback", RoutingConfig::PrimaryReads::Fallback},
      {"always", RoutingConfig::PrimaryReads::Always}}};
  if (auto v = in.choice("primary_reads", kPrimaryReads)) {
    r.primary_reads = *v;
  }
  static constexpr std::array<Choice<RoutingConfig::Balance>, 2> kBalance{{
      {"least_outstanding", RoutingConfig::Balance::LeastOutstanding},
      {"round_robin", RoutingConfig::Balance::RoundRobin}}};
  if (auto v = in.choice("load_balance", kBalance)) {
    r.load_balance = *v;
  }
  static constexpr std::array<Choice<RoutingConfig::ReadYourWrites>, 3> kRyw{{
      {"lsn", RoutingConfig::ReadYourWrites::Lsn},
      {"window", RoutingConfig::ReadYourWrites::Window},
      {"off", RoutingConfig::ReadYourWrites::Off}}};
  if (auto v = in.choice("read_your_writes", kRyw)) {
    r.read_your_writes = *v;
  }
  if (auto v = in.seconds("read_your_writes_window")) {
    r.read_your_writes_window = *v;
  }
  if (auto v = in.seconds("health_check_period")) {
    r.health_check_period = *v;
    if (v->count() < 10) {
      diag.error(in.source_of("health_check_period"), "'health_check_period' must be at least 0.01 s");
    }
  }
  r.health_check_user = in.string("health_check_user");
  r.health_check_password = in.string("health_check_password");
  if (auto names = in.strings("read_only_functions", "function names")) {
    r.read_only_functions = std::move(*names);
  }
  if (auto names = in.strings("write_functions", "function names")) {
    r.write_functions = std::move(*names);
  }
  if (const toml::node* node = in.get("replica_weights")) {
    const auto* array = node->as_array();
    bool ok = array != nullptr && array->size() == db.replicas.size();
    for (std::size_t i = 0; ok && i < array->size(); ++i) {
      const auto* w = array->get(i)->as_integer();
      ok = w != nullptr && w->get() >= 0 && w->get() <= 1000;
      if (ok) {
        r.replica_weights.push_back(static_cast<int>(w->get()));
      }
    }
    if (!ok) {
      diag.error(node->source(),
                 "'replica_weights' must list one weight (0-1000) per replica, in order");
    }
  }
  if (const toml::node* node = in.get("max_replica_lag")) {
    // One bound or both: "16MB", "500ms", ["16MB", "2s"], or an integer (bytes).
    std::vector<const toml::node*> items;
    if (const auto* array = node->as_array()) {
      for (std::size_t i = 0; i < array->size(); ++i) {
        items.push_back(array->get(i));
      }
    } else {
      items.push_back(node);
    }
    r.max_replica_lag_bytes = 0;
    r.max_replica_lag_ms = 0;
    for (const toml::node* item : items) {
      std::optional<std::pair<std::int64_t, bool>> lag;
      if (const auto* text = item->as_string()) {
        lag = parse_lag(text->get());
      } else if (const auto* number = item->as_integer(); number && number->get() >= 0) {
        lag = std::pair{number->get(), true};
      }
      if (!lag) {
        diag.error(item->source(), "'max_replica_lag' must be a size (\"16MB\") or a duration "
                                   "(\"500ms\", \"2s\"), or a list of both");
        continue;
      }
      (lag->second ? r.max_replica_lag_bytes : r.max_replica_lag_ms) = lag->first;
    }
  }
}

DatabaseConfig read_database(std::string_view name, const toml::table& table,
                             const GeneralConfig& general, Diagnostics& diag) {
  TableReader in(table, section_name("databases", name), diag);
  DatabaseConfig db;
  db.name = name;
  db.dbname = name;
  db.timeouts = general.timeouts;
  db.tls = general.tls;
  if (auto dbname = in.string("dbname")) {
    db.dbname = std::move(*dbname);
  }
  if (in.require("primary")) {
    if (auto primary = in.address("primary")) {
      db.primary = std::move(*primary);
    }
  }
  if (auto replicas = in.addresses("replicas", /*allow_empty=*/true)) {
    db.replicas = std::move(*replicas);
  }
  if (auto mode = in.choice("pool_mode", kPoolModes)) {
    db.pool_mode = *mode;
  }
  const auto pool_size = in.integer("pool_size", 1, kIntMax);
  if (pool_size) {
    db.pool_size = static_cast<int>(*pool_size);
  }
  const auto min_pool_size = in.integer("min_pool_size", 0, kIntMax);
  if (min_pool_size) {
    db.min_pool_size = static_cast<int>(*min_pool_size);
  }
  // Compare only with a pool_size we could read, so one mistake gives one error.
  const bool pool_size_known = pool_size.has_value() || !in.has("pool_size");
  if (min_pool_size && pool_size_known && db.min_pool_size > db.pool_size) {
    diag.error(in.source_of("min_pool_size"),
               fmt::format("'min_pool_size' must not exceed 'pool_size' ({}), got {}", db.pool_size,
                           db.min_pool_size));
  }
  if (auto reserve = in.integer("reserve_pool_size", 0, kIntMax)) {
    db.reserve_pool_size = static_cast<int>(*reserve);
  }
  if (auto timeout = in.seconds("reserve_pool_timeout")) {
    db.reserve_pool_timeout = *timeout;
  }
  if (auto max = in.integer("max_prepared_statements", 0, kIntMax)) {
    db.max_prepared_statements = static_cast<int>(*max);
  }
  db.server_user = in.string("server_user");
  db.server_password = in.string("server_password");
  db.auth_user = in.string("auth_user");
  db.auth_query = in.string("auth_query").value_or("");
  if (in.has("server_password") && !in.has("server_user")) {
    diag.error(in.source_of("server_password"), "'server_password' needs 'server_user'");
  }
  read_timeouts(in, db.timeouts);
  read_routing(in, db, diag);
  read_tls(in, db.tls, /*general=*/false, diag);
  check_tls(in, db.tls, general.tls, diag);
  in.report_unknown_keys();
  return db;
}

// Checks that the stored password can serve the user's auth method: md5 needs the
// plaintext or an md5 hash, SCRAM needs the plaintext or a SCRAM verifier.
void check_password(TableReader& in, UserConfig& user, const std::string& password,
                    Diagnostics& diag) {
  const toml::source_region& where = in.source_of("password");
  if (password.empty()) {
    if (user.auth != AuthMethod::Trust) {
      diag.error(where, "'password' must not be empty");
    }
    return;
  }
  auto kind = classify_password(password);
  if (!kind) {
    diag.error(where, fmt::format("bad 'password': {}", kind.error().message));
    return;
  }
  user.password = password;
  user.password_kind = *kind;
  if (user.auth == AuthMethod::Md5 && *kind == PasswordKind::ScramSha256) {
    diag.error(where,
               "'password' is a SCRAM-SHA-256 verifier, which cannot serve auth = \"md5\"; "
               "give the plaintext password or an md5 hash");
  } else if (user.auth == AuthMethod::ScramSha256 && *kind == PasswordKind::Md5) {
    diag.error(where,
               "'password' is an md5 hash, which cannot serve auth = \"scram-sha-256\"; "
               "give the plaintext password or a SCRAM-SHA-256 verifier");
  }
}

UserConfig read_user(std::string_view name, const toml::table& table, Diagnostics& diag) {
  TableReader in(table, section_name("users", name), diag);
  UserConfig user;
  user.name = name;
  const auto auth = in.choice("auth", kAuthMethods);
  if (auth) {
    user.auth = *auth;
  }
  const auto password = in.string("password", /*allow_empty=*/true);
  user.pool_mode = in.choice("pool_mode", kPoolModes);
  if (auto n = in.integer("max_user_client_connections", 0, kIntMax)) {
    user.max_user_client_connections = static_cast<int>(*n);
  }
  user.max_query_rate = in.number("max_query_rate", 0, 1e9);
  in.report_unknown_keys();
  if (!auth && in.has("auth")) {
    return user;  // the password checks depend on the method; it is already reported
  }
  if (user.auth != AuthMethod::Trust) {
    in.require("password", " (needed unless auth = \"trust\")");
  }
  if (password) {
    check_password(in, user, *password, diag);
  }
  return user;
}

// Reads the entries of [databases] or [users]: each key names a table.
template <typename Read>
void read_entries(const toml::table& parent, std::string_view parent_name, std::string_view what,
                  Diagnostics& diag, Read read) {
  for (auto&& [key, node] : parent) {
    const std::string_view name = key.str();
    if (name.empty()) {
      diag.error(key.source(), fmt::format("{} name must not be empty", what));
      continue;
    }
    const auto* table = node.as_table();
    if (table == nullptr) {
      diag.error(node.source(),
                 fmt::format("{} must be a table, got {}", section_name(parent_name, name),
                             type_name(node.type())));
      continue;
    }
    read(name, *table);
  }
}

Result<Config> read_config(const toml::table& root, std::string_view source_name) {
  Diagnostics diag(source_name);
  Config config;
  config.source_path = source_name;
  config.general.listen = {kDefaultListen};

  TableReader top(root, "", diag);
  const toml::table* general = top.table("pgmux");
  const toml::table* databases = top.table("databases");
  const toml::table* users = top.table("users");
  const toml::table* advice = top.table("index_advice");
  const toml::node* hba = top.get("hba");
  top.report_unknown_keys(
      " (expected [pgmux], [databases.NAME], [users.NAME], [index_advice] or [[hba]])");
  if (hba != nullptr) {
    read_hba(*hba, config.hba, diag);
  }

  // [pgmux] first: databases inherit its timeouts and TLS wherever it sits in the file.
  if (general != nullptr) {
    read_general(*general, config.general, diag);
  }
  if (databases != nullptr) {
    read_entries(*databases, "databases", "database", diag,
                 [&](std::string_view name, const toml::table& table) {
                   config.databases.emplace(
                       name, read_database(name, table, config.general, diag));
                 });
  }
  if (users != nullptr) {
    read_entries(*users, "users", "user", diag,
                 [&](std::string_view name, const toml::table& table) {
                   config.users.emplace(name, read_user(name, table, diag));
                 });
  }
  if (advice != nullptr) {
    read_index_advice(*advice, config.index_advice, diag);
  }
  // auth_user and auth_query: [pgmux]'s unless the database has its own; auth_user must be
  // a configured user with a plaintext password (pgmux logs in as it to run auth_query).
  for (auto& [name, db] : config.databases) {
    if (!db.auth_user) {
      db.auth_user = config.general.auth_user;
    }
    if (db.auth_query.empty()) {
      db.auth_query = config.general.auth_query;
    }
    if (db.auth_user) {
      const UserConfig* au = config.find_user(*db.auth_user);
      if (au == nullptr || au->password_kind != PasswordKind::Plain || au->password.empty()) {
        diag.error(databases != nullptr ? databases->source() : root.source(),
                   fmt::format("auth_user \"{}\" of database \"{}\" must be a [users] entry with a "
                               "plaintext password (pgmux logs in as it to run auth_query)",
                               *db.auth_user, name));
      }
    }
  }
  if (!top.has("databases") || (databases != nullptr && databases->empty())) {
    diag.error(databases != nullptr ? databases->source() : root.source(),
               "no databases: add at least one [databases.NAME] table");
  }

  if (!diag.empty()) {
    return std::unexpected(diag.to_error());
  }
  return config;
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

Result<Config> load_config_string(std::string_view toml_text, std::string_view source_name) {
  try {
    const toml::table root = toml::parse(toml_text, source_name);
    return read_config(root, source_name);
  } catch (const toml::parse_error& error) {
    const toml::source_position where = error.source().begin;
    return fail(Errc::Config, fmt::format("{}:{}:{}: {}", source_name, std::max(where.line, 1u),
                                          std::max(where.column, 1u), error.description()));
  } catch (const std::exception& error) {  // std::bad_alloc, fmt::format_error
    return fail(Errc::Config, fmt::format("{}: {}", source_name, error.what()));
  }
}

Result<Config> load_config_file(const std::string& path) {
  try {
    std::string text;
    int error = 0;
    const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (file == nullptr) {
      error = errno;
    } else {
      char buffer[16 * 1024];
      std::size_t n = 0;
      while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
        text.append(buffer, n);
      }
      if (std::ferror(file.get()) != 0) {
        error = errno;  // e.g. EISDIR: fopen() succeeds on a directory, read() does not
      }
    }
    if (error != 0) {
      return fail(Errc::Config, fmt::format("{}: cannot read: {}", path, std::strerror(error)));
    }
    return load_config_string(text, path);
  } catch (const std::exception& error) {  // std::bad_alloc
    return fail(Errc::Config, fmt::format("{}: {}", path, error.what()));
  }
}

}  // namespace pooler::config
