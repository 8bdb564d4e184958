#pragma once
// Small helpers shared by the files of ClientSession (internal to pooler/client).

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pooler/wire/messages.h"
#include "pooler/wire/sqlstate.h"
#include "pooler/wire/write_buffer.h"

namespace pooler::client::session_util {


namespace ss = wire::sqlstate;

inline constexpr std::size_t kMaxBufferedWhileWaiting = 256 * 1024;

inline std::string quote_literal(std::string_view v) {
  std::string out = "'";
  for (const char c : v) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  out += '\'';
  return out;
}

inline std::uint64_t hash_settings(const std::vector<std::pair<std::string, std::string>>& settings) {
  if (settings.empty()) {
    return 0;
  }
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (const auto& [name, stmt] : settings) {
    for (const char c : stmt) {
      h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

inline void upsert(std::vector<std::pair<std::string, std::string>>& v, std::string name, std::string value) {
  for (auto& [k, val] : v) {
    if (k == name) {
      val = std::move(value);
      return;
    }
  }
  v.emplace_back(std::move(name), std::move(value));
}

// Startup keys that are not settings.
inline bool is_startup_only(std::string_view key) {
  return key == "user" || key == "database" || key == "replication" || key == "options" ||
         key.starts_with("_pq_.");
}

// `-c name=value` and `--name=value` pairs from the startup "options" parameter.
inline std::vector<std::pair<std::string, std::string>> parse_options(std::string_view options) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> words;
  std::string cur;
  bool escape = false;
  for (const char c : options) {
    if (escape) {
      cur += c;
      escape = false;
    } else if (c == '\\') {
      escape = true;
    } else if (c == ' ' || c == '\t') {
      if (!cur.empty()) {
        words.push_back(std::move(cur));
        cur.clear();
      }
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) {
    words.push_back(std::move(cur));
  }
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    if (w == "-c" && i + 1 < words.size()) {
      w = words[++i];
    } else if (w.starts_with("-c")) {
      w.remove_prefix(2);
    } else if (w.starts_with("--")) {
      w.remove_prefix(2);
    } else {
      continue;
    }
    const auto eq = w.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    std::string name(w.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');
    out.emplace_back(std::move(name), std::string(w.substr(eq + 1)));
  }
  return out;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}


// A text that may concern pgmux's own bookkeeping, judged by its first keyword and by the
// two function families that matter from anywhere in a statement. Most queries (SELECT,
// INSERT, UPDATE ...) are rejected after a few byte compares.
inline bool worth_scanning(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' ||
                            sql[i] == '\r' || sql[i] == '(')) {
    ++i;
  }
  if (i < sql.size() && (sql[i] == '/' || sql[i] == '-')) {
    return true;  // a leading comment: let the scanner skip it
  }
  const std::string_view rest = sql.substr(i);
  // Several statements (a ';' followed by more than blanks): each may pin or change
  // settings. A lone trailing ';', as pgbench sends, is not that.
  if (const auto semi = rest.find(';'); semi != std::string_view::npos &&
                                        rest.find_first_not_of(" \t\r\n;", semi) !=
                                            std::string_view::npos) {
    return true;
  }
  auto starts_with_keyword = [&](std::string_view kw) {
    return rest.size() > kw.size() &&
           std::equal(kw.begin(), kw.end(), rest.begin(),
                      [](char a, char b) { return a == (b | 0x20); }) &&
           !std::isalnum(static_cast<unsigned char>(rest[kw.size()])) && rest[kw.size()] != '_';
  };
  // By first letter, so that the usual SELECT, INSERT, UPDATE ... cost one test.
  bool keyword = false;
  switch (rest.empty() ? '\0' : static_cast<char>(rest[0] | 0x20)) {
    case 's': keyword = starts_with_keyword("set"); break;
    case 'r': keyword = starts_with_keyword("reset"); break;
    case 'd':
      keyword = starts_with_keyword("discard") || starts_with_keyword("deallocate") ||
                starts_with_keyword("declare");
      break;
    case 'l': keyword = starts_with_keyword("listen"); break;
    case 'u': keyword = starts_with_keyword("unlisten"); break;
    case 'c': keyword = starts_with_keyword("create") || starts_with_keyword("close"); break;
    case 'p': keyword = starts_with_keyword("prepare"); break;
    case 'e': keyword = starts_with_keyword("execute"); break;
    default: break;
  }
  if (keyword) {
    return true;
  }
  // SELECT ... INTO TEMP makes a temporary table.
  if ((starts_with_keyword("select") || starts_with_keyword("with")) &&
      (rest.find("into") != std::string_view::npos || rest.find("INTO") != std::string_view::npos)) {
    return true;
  }
  return rest.find("dvisory_") != std::string_view::npos ||
         rest.find("DVISORY_") != std::string_view::npos ||
         rest.find("et_config") != std::string_view::npos ||
         rest.find("ET_CONFIG") != std::string_view::npos;
}

inline std::string error_bytes(std::string_view sqlstate, std::string message) {
  wire::WriteBuffer out;
  wire::ErrorResponse err;
  err.sqlstate = std::string(sqlstate);
  err.message = std::move(message);
  wire::encode(err, out);
  return {reinterpret_cast<const char*>(out.data().data()), out.size()};
}

inline std::string message_bytes(char type, std::string_view tag) {
  wire::WriteBuffer out;
  if (type == 'C') {
    wire::encode(wire::CommandComplete{tag}, out);
  } else {
    (void)out.begin_message(type);
  }
  return {reinterpret_cast<const char*>(out.data().data()), out.size()};
}


}  // namespace pooler::client::session_util
