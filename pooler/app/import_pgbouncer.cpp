#include "pooler/app/import_pgbouncer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <utility>

#include "pooler/config/config.h"
#include "pooler/config/config_loader.h"

namespace pooler::app {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// A TOML basic string.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// A table-name key: bare when TOML allows it, quoted otherwise.
std::string toml_key(std::string_view s) {
  const bool bare = !s.empty() && std::ranges::all_of(s, [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  return bare ? std::string(s) : quote(s);
}

std::string host_port(std::string_view host, std::string_view port) {
  if (host.find(':') != std::string_view::npos && !host.starts_with('[')) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

std::optional<long long> to_int(std::string_view s) {
  s = trim(s);
  long long v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// A duration in seconds as PgBouncer writes it (an integer or a fraction), as TOML.
std::optional<std::string> to_seconds(std::string_view s) {
  s = trim(s);
  double v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < 0) return std::nullopt;
  if (to_int(s)) return std::string(s);
  return fmt::format("{}", v);
}

struct IniEntry {
  std::string key;
  std::string value;
  int line = 0;
};
struct IniSection {
  std::string name;
  std::vector<IniEntry> entries;
};

Result<std::vector<IniSection>> parse_ini(std::string_view text, std::vector<std::string>& notes) {
  std::vector<IniSection> sections;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    const auto line = trim(raw);
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (line.front() == '%') {
      notes.push_back(fmt::format("line {}: '{}' (included files are not followed; import them "
                                  "separately and merge)", line_no, line));
      continue;
    }
    if (line.front() == '[') {
      if (line.back() != ']') {
        return fail(Errc::Config, fmt::format("pgbouncer.ini:{}: section header without ']'", line_no));
      }
      sections.push_back({lower(trim(line.substr(1, line.size() - 2))), {}});
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return fail(Errc::Config, fmt::format("pgbouncer.ini:{}: expected 'key = value'", line_no));
    }
    if (sections.empty()) {
      return fail(Errc::Config, fmt::format("pgbouncer.ini:{}: setting before any [section]", line_no));
    }
    auto value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    auto key = trim(line.substr(0, eq));
    if (key.size() >= 2 && key.front() == '"' && key.back() == '"') {
      key = key.substr(1, key.size() - 2);  // a quoted database name
    }
    sections.back().entries.push_back({std::string(key), std::string(value), line_no});
  }
  return sections;
}

// "host=db port=5432 password='it''s'" -> ordered key/value pairs (libpq quoting rules).
Result<std::vector<std::pair<std::string, std::string>>> parse_connstring(std::string_view s, int line) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= s.size()) break;
    std::string key;
    while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) key += s[i++];
    skip_space();
    if (i >= s.size() || s[i] != '=') {
      return fail(Errc::Config, fmt::format("pgbouncer.ini:{}: expected '=' after '{}' in the "
                                            "connection string", line, key));
    }
    ++i;
    skip_space();
    std::string value;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          value += s[i + 1];
          i += 2;
        } else if (s[i] == '\'') {
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            value += '\'';
            i += 2;
          } else {
            ++i;
            closed = true;
            break;
          }
        } else {
          value += s[i++];
        }
      }
      if (!closed) {
        return fail(Errc::Config, fmt::format("pgbouncer.ini:{}: unterminated quote in the value of '{}'",
                                              line, key));
      }
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
    }
    out.emplace_back(lower(key), std::move(value));
  }
  return out;
}

// userlist.txt: "user" "password" per line, "" inside quotes is one quote.
std::vector<std::pair<std::string, std::string>> parse_userlist(std::string_view text,
                                                                std::vector<std::string>& notes) {
  std::vector<std::pair<std::string, std::string>> out;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    std::vector<std::string> fields;
    std::size_t i = 0;
    bool ok = true;
    while (i < line.size() && fields.size() < 2) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      if (i >= line.size()) break;
      if (line[i] != '"') {
        ok = false;
        break;
      }
      ++i;
      std::string field;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        field += line[i++];
      }
      if (!closed) {
        ok = false;
        break;
      }
      fields.push_back(std::move(field));
    }
    if (!ok || fields.size() != 2) {
      notes.push_back(fmt::format("userlist.txt line {}: not '\"user\" \"password\"', skipped", line_no));
      continue;
    }
    out.emplace_back(std::move(fields[0]), std::move(fields[1]));
  }
  return out;
}

struct Database {
  std::string name;
  std::string dbname;
  std::string primary;
  std::optional<std::string> pool_mode;
  std::optional<long long> pool_size, min_pool_size, reserve_pool_size;
  std::optional<std::string> server_user, server_password;
};

struct User {
  std::string name;
  std::optional<std::string> password;
  std::optional<std::string> pool_mode;
};

bool valid_pool_mode(std::string_view m) {
  return m == "session" || m == "transaction" || m == "statement";
}

bool valid_sslmode(std::string_view m) {
  return m == "disable" || m == "allow" || m == "prefer" || m == "require" || m == "verify-ca" ||
         m == "verify-full";
}

// What pgmux can say for PgBouncer settings it has no key for.
std::string_view why_not(std::string_view key) {
  static const std::map<std::string_view, std::string_view> kWhy = {
      {"logfile", "pgmux logs to stderr (journald under systemd)"},
      {"pidfile", "pgmux runs in the foreground; systemd tracks the process"},
      {"unix_socket_dir", "pgmux listens on TCP only"},
      {"unix_socket_mode", "pgmux listens on TCP only"},
      {"unix_socket_group", "pgmux listens on TCP only"},
      {"auth_hba_file", "pgmux has no hba rules: each [users.NAME] has one auth method"},
      {"auth_query", "pgmux reads passwords from [users.NAME], not from the server"},
      {"auth_user", "pgmux reads passwords from [users.NAME], not from the server"},
      {"auth_dbname", "pgmux reads passwords from [users.NAME], not from the server"},
      {"stats_users", "no read-only admin role in pgmux"},
      {"server_reset_query", "pgmux cleans up server state between clients itself"},
      {"ignore_startup_parameters", "pgmux carries every startup parameter to the server"},
      {"max_db_connections", "pgmux caps backends with pool_size + reserve_pool_size"},
      {"max_user_connections", "no per-user connection cap in pgmux"},
      {"daemon", "pgmux runs in the foreground"},
      {"user", "run pgmux as an unprivileged user through systemd or the container"},
  };
  if (const auto it = kWhy.find(key); it != kWhy.end()) return it->second;
  if (key == "client_tls_ciphers") {
    return "PgBouncer's cipher names differ; pgmux takes an OpenSSL list (default: HIGH:!aNULL:...)";
  }
  if (key == "client_tls_protocols") return "pgmux does not offer the legacy protocol set";
  if (key.starts_with("client_tls") || key.starts_with("server_tls")) return "no pgmux equivalent";
  return "no pgmux equivalent";
}

// Whether this build's config loader knows `admin_users` (the admin console, issue 6).
bool loader_knows_admin_users() {
  static const bool known = config::load_config_string(
                                "[pgmux]\nadmin_users = []\n[databases.probe]\n"
                                "primary = \"127.0.0.1:5432\"\n",
                                "probe")
                                .has_value();
  return known;
}

constexpr std::string_view kTimeoutKeys[] = {
    "query_wait_timeout",   "idle_transaction_timeout", "client_idle_timeout",
    "client_login_timeout", "server_connect_timeout",   "server_lifetime",
    "server_idle_timeout",
};

}  // namespace

Result<ImportResult> import_pgbouncer(std::string_view ini_text,
                                      std::optional<std::string_view> userlist_text) {
  ImportResult result;
  auto& notes = result.not_carried_over;
  auto sections = parse_ini(ini_text, notes);
  if (!sections) return std::unexpected(sections.error());

  // [pgbouncer]
  std::string listen_port = "6432";
  std::vector<std::string> listen_addrs;
  bool listen_addr_set = false;
  std::string auth_type = "md5";  // PgBouncer's default
  std::string default_pool_mode = "session";  // PgBouncer's default
  std::optional<long long> default_pool_size, min_pool_size, reserve_pool_size;
  std::optional<std::string> reserve_pool_timeout;
  std::optional<long long> max_prepared_statements;
  std::vector<std::pair<std::string, std::string>> general;  // [pgmux] key -> TOML value
  std::vector<std::string> admin_users;
  std::optional<std::string> auth_file;
  bool server_tls_set = false;

  auto bad_value = [&](const IniEntry& e, std::string_view expected) {
    notes.push_back(fmt::format("{} = {} (line {}: expected {})", e.key, e.value, e.line, expected));
  };

  for (const auto& section : *sections) {
    if (section.name != "pgbouncer") continue;
    for (const auto& e : section.entries) {
      const std::string key = lower(e.key);
      if (key == "listen_addr") {
        listen_addr_set = true;
        for (const auto& addr : split_list(e.value)) {
          if (addr == "*") {
            listen_addrs.push_back("0.0.0.0");
            notes.push_back("listen_addr = * (pgmux listens on 0.0.0.0, IPv4 only; add \"[::]:PORT\" "
                            "to listen for IPv6)");
          } else {
            listen_addrs.push_back(addr);
          }
        }
      } else if (key == "listen_port") {
        if (const auto port = to_int(e.value); port && *port > 0 && *port < 65536) {
          listen_port = std::to_string(*port);
        } else {
          bad_value(e, "a port 1-65535");
        }
      } else if (key == "pool_mode") {
        if (valid_pool_mode(e.value)) {
          default_pool_mode = e.value;
        } else {
          bad_value(e, "session, transaction or statement");
        }
      } else if (key == "default_pool_size" || key == "min_pool_size" || key == "reserve_pool_size" ||
                 key == "max_prepared_statements") {
        const auto v = to_int(e.value);
        if (!v || *v < 0) {
          bad_value(e, "a non-negative integer");
          continue;
        }
        if (key == "default_pool_size") {
          if (*v < 1) {
            notes.push_back("default_pool_size = 0 (pgmux needs a pool_size of at least 1; using 20)");
          } else {
            default_pool_size = v;
          }
        } else if (key == "min_pool_size") {
          min_pool_size = v;
        } else if (key == "reserve_pool_size") {
          reserve_pool_size = v;
        } else {
          max_prepared_statements = v;
        }
      } else if (key == "reserve_pool_timeout") {
        if (auto s = to_seconds(e.value)) {
          reserve_pool_timeout = std::move(*s);
        } else {
          bad_value(e, "seconds");
        }
      } else if (std::ranges::find(kTimeoutKeys, key) != std::end(kTimeoutKeys) ||
                 key == "stats_period") {
        if (auto s = to_seconds(e.value)) {
          general.emplace_back(key, std::move(*s));
        } else {
          bad_value(e, "seconds");
        }
      } else if (key == "max_client_conn") {
        if (const auto v = to_int(e.value); v && *v >= 1) {
          general.emplace_back(key, std::to_string(*v));
        } else {
          bad_value(e, "a positive integer");
        }
      } else if (key == "client_tls_sslmode" || key == "server_tls_sslmode") {
        if (valid_sslmode(e.value)) {
          general.emplace_back(key, quote(e.value));
          if (key == "server_tls_sslmode") server_tls_set = true;
        } else {
          bad_value(e, "disable, allow, prefer, require, verify-ca or verify-full");
        }
      } else if (key == "client_tls_cert_file" || key == "client_tls_key_file" ||
                 key == "client_tls_ca_file" || key == "server_tls_ca_file" ||
                 key == "server_tls_cert_file" || key == "server_tls_key_file") {
        if (!e.value.empty()) general.emplace_back(key, quote(e.value));
      } else if (key == "client_tls_protocols" && e.value != "legacy") {
        general.emplace_back(key, quote(e.value));  // same words: secure, all, tlsv1.2, ...
      } else if (key == "admin_users") {
        admin_users = split_list(e.value);
      } else if (key == "auth_type") {
        auth_type = lower(e.value);
      } else if (key == "auth_file") {
        auth_file = e.value;
      } else {
        notes.push_back(fmt::format("{} = {} ({})", e.key, e.value, why_not(key)));
      }
    }
  }
  // PgBouncer tries TLS toward servers by default; pgmux does only when told.
  if (!server_tls_set) general.emplace_back("server_tls_sslmode", quote("prefer"));
  if (listen_addr_set && listen_addrs.empty()) {
    notes.push_back("listen_addr is empty (Unix socket only in PgBouncer; pgmux listens on TCP, "
                    "127.0.0.1 kept)");
  }
  if (listen_addrs.empty()) listen_addrs.push_back("127.0.0.1");

  // Auth method for a user, from auth_type and how the password is stored.
  std::string auth_default;
  if (auth_type == "trust" || auth_type == "any") {
    auth_default = "trust";
    if (auth_type == "any") {
      notes.push_back("auth_type = any (pgmux has no 'any': users get auth = \"trust\" but each "
                      "still needs a [users.NAME] table)");
    }
  } else if (auth_type == "md5" || auth_type == "scram-sha-256") {
    auth_default = auth_type;
  } else {
    notes.push_back(fmt::format("auth_type = {} (pgmux supports scram-sha-256, md5 and trust; users "
                                "get the method their stored password allows)", auth_type));
  }

  // [users] section: per-user pool_mode.
  std::vector<User> users;
  auto find_user = [&](std::string_view name) -> User* {
    const auto it = std::ranges::find(users, name, &User::name);
    return it == users.end() ? nullptr : &*it;
  };
  std::map<std::string, std::string, std::less<>> userlist_passwords;
  if (userlist_text) {
    for (auto& [name, password] : parse_userlist(*userlist_text, notes)) {
      userlist_passwords[name] = password;
      if (User* u = find_user(name)) {
        u->password = std::move(password);
      } else {
        users.push_back({name, std::move(password), std::nullopt});
      }
    }
  } else if (auth_default != "trust") {
    notes.push_back(fmt::format("users: no userlist.txt given{}, so no [users.NAME] tables were "
                                "written; pass it as the second argument",
                                auth_file ? " (auth_file = " + *auth_file + ")" : std::string()));
  }
  for (const auto& section : *sections) {
    if (section.name != "users") continue;
    for (const auto& e : section.entries) {
      auto params = parse_connstring(e.value, e.line);
      if (!params) return std::unexpected(params.error());
      User* u = find_user(e.key);
      if (u == nullptr) {
        if (auth_default != "trust") {
          notes.push_back(fmt::format("users.{} (not in userlist.txt: no password to log in with)", e.key));
          continue;
        }
        users.push_back({e.key, std::nullopt, std::nullopt});
        u = &users.back();
      }
      for (const auto& [k, v] : *params) {
        if (k == "pool_mode" && valid_pool_mode(v)) {
          u->pool_mode = v;
        } else {
          notes.push_back(fmt::format("users.{}: {}={} ({})", e.key, k, v, why_not(k)));
        }
      }
    }
  }

  // [databases]
  std::vector<Database> databases;
  for (const auto& section : *sections) {
    if (section.name != "databases") continue;
    for (const auto& e : section.entries) {
      if (e.key == "*") {
        notes.push_back(fmt::format("databases.* = {} (no fallback database in pgmux: add a "
                                    "[databases.NAME] table for each database clients use)", e.value));
        continue;
      }
      auto params = parse_connstring(e.value, e.line);
      if (!params) return std::unexpected(params.error());
      Database db;
      db.name = e.key;
      db.dbname = e.key;
      std::string host, port = "5432";
      std::optional<std::string> password;
      for (const auto& [k, v] : *params) {
        if (k == "host") {
          host = v;
        } else if (k == "port") {
          if (const auto p = to_int(v); p && *p > 0 && *p < 65536) {
            port = std::to_string(*p);
          } else {
            notes.push_back(fmt::format("databases.{}: port={} (not a port; 5432 used)", e.key, v));
          }
        } else if (k == "dbname") {
          db.dbname = v;
        } else if (k == "user") {
          db.server_user = v;
        } else if (k == "password") {
          password = v;
        } else if (k == "pool_mode") {
          if (valid_pool_mode(v)) {
            db.pool_mode = v;
          } else {
            notes.push_back(fmt::format("databases.{}: pool_mode={} (not a pool mode)", e.key, v));
          }
        } else if (k == "pool_size" || k == "min_pool_size" || k == "reserve_pool" ||
                   k == "reserve_pool_size") {
          const auto n = to_int(v);
          if (!n || *n < 0 || (k == "pool_size" && *n < 1)) {
            notes.push_back(fmt::format("databases.{}: {}={} (not a valid size)", e.key, k, v));
          } else if (k == "pool_size") {
            db.pool_size = n;
          } else if (k == "min_pool_size") {
            db.min_pool_size = n;
          } else {
            db.reserve_pool_size = n;
          }
        } else {
          notes.push_back(fmt::format("databases.{}: {}={} ({})", e.key, k,
                                      k.find("password") != std::string::npos ? "..." : v, why_not(k)));
        }
      }
      const auto hosts = split_list(host);
      if (hosts.empty()) {
        host = "/var/run/postgresql";
        notes.push_back(fmt::format("databases.{}: no host= (PgBouncer used its Unix socket "
                                    "directory; pgmux uses /var/run/postgresql, change it if needed)",
                                    e.key));
      } else {
        host = hosts.front();
        for (std::size_t i = 1; i < hosts.size(); ++i) {
          notes.push_back(fmt::format("databases.{}: host {} (pgmux connects to one primary; list "
                                      "read-only copies in replicas = [...])", e.key, hosts[i]));
        }
      }
      db.primary = host_port(host, port);
      if (password && !db.server_user) {
        notes.push_back(fmt::format("databases.{}: password= without user= (pgmux uses the "
                                    "client's own credentials)", e.key));
      } else if (db.server_user) {
        if (!password) {
          if (const auto it = userlist_passwords.find(*db.server_user); it != userlist_passwords.end()) {
            password = it->second;
          }
        }
        if (password && config::classify_password(*password).value_or(config::PasswordKind::Md5) ==
                            config::PasswordKind::Plain) {
          db.server_password = *password;
        } else {
          notes.push_back(fmt::format("databases.{}: no plaintext password for user={} (set "
                                      "server_password by hand)", e.key, *db.server_user));
        }
      }
      databases.push_back(std::move(db));
    }
  }
  for (const auto& section : *sections) {
    if (section.name != "pgbouncer" && section.name != "databases" && section.name != "users") {
      notes.push_back(fmt::format("[{}] section ({} settings; no pgmux equivalent)", section.name,
                                  section.entries.size()));
    }
  }
  if (databases.empty()) {
    return fail(Errc::Config, "pgbouncer.ini names no database pgmux can serve (only '*' or none): "
                              "pgmux needs at least one [databases.NAME]");
  }

  // Write it out.
  std::string out = "\n[pgmux]\n";
  if (listen_addrs.size() == 1) {
    out += "listen = " + quote(host_port(listen_addrs.front(), listen_port)) + "\n";
  } else {
    out += "listen = [";
    for (std::size_t i = 0; i < listen_addrs.size(); ++i) {
      out += (i ? ", " : "") + quote(host_port(listen_addrs[i], listen_port));
    }
    out += "]\n";
  }
  for (const auto& [k, v] : general) out += k + " = " + v + "\n";
  if (!admin_users.empty()) {
    std::string list = "[";
    for (std::size_t i = 0; i < admin_users.size(); ++i) list += (i ? ", " : "") + quote(admin_users[i]);
    list += "]";
    if (loader_knows_admin_users()) {
      out += "admin_users = " + list + "\n";
    } else {
      out += "# admin_users = " + list + "   # the admin console comes with issue 6\n";
      notes.push_back("admin_users (this pgmux has no admin console yet; kept as a comment)");
    }
  }

  for (const auto& db : databases) {
    out += "\n[databases." + toml_key(db.name) + "]\n";
    out += "dbname = " + quote(db.dbname) + "\n";
    out += "primary = " + quote(db.primary) + "\n";
    out += "pool_mode = " + quote(db.pool_mode.value_or(default_pool_mode)) + "\n";
    const long long size = db.pool_size.value_or(default_pool_size.value_or(20));
    out += fmt::format("pool_size = {}\n", size);
    if (auto v = db.min_pool_size ? db.min_pool_size : min_pool_size; v && *v > 0) {
      out += fmt::format("min_pool_size = {}\n", std::min(*v, size));
      if (*v > size) {
        notes.push_back(fmt::format("databases.{}: min_pool_size {} (above pool_size; {} used)",
                                    db.name, *v, size));
      }
    }
    if (auto v = db.reserve_pool_size ? db.reserve_pool_size : reserve_pool_size; v) {
      out += fmt::format("reserve_pool_size = {}\n", *v);
    }
    if (reserve_pool_timeout) out += "reserve_pool_timeout = " + *reserve_pool_timeout + "\n";
    if (max_prepared_statements) {
      out += fmt::format("max_prepared_statements = {}\n", *max_prepared_statements);
    }
    if (db.server_user) out += "server_user = " + quote(*db.server_user) + "\n";
    if (db.server_user && db.server_password) {
      out += "server_password = " + quote(*db.server_password) + "\n";
    }
  }

  for (const auto& u : users) {
    std::string auth = auth_default;
    std::optional<config::PasswordKind> kind;
    if (u.password) {
      auto k = config::classify_password(*u.password);
      if (!k) {
        notes.push_back(fmt::format("users.{} (password not usable: {})", u.name, k.error().message));
        continue;
      }
      kind = *k;
    }
    if (auth != "trust") {
      if (!u.password || u.password->empty()) {
        notes.push_back(fmt::format("users.{} (empty password; set one or auth = \"trust\")", u.name));
        continue;
      }
      if (*kind == config::PasswordKind::ScramSha256) {
        auth = "scram-sha-256";  // PgBouncer too answers md5 users holding a verifier with SCRAM
      } else if (*kind == config::PasswordKind::Md5) {
        if (auth == "scram-sha-256") {
          notes.push_back(fmt::format("users.{}: auth_type scram-sha-256 with an md5 hash (SCRAM "
                                      "needs the plaintext or a verifier; auth = \"md5\" used)", u.name));
        }
        auth = "md5";
      } else if (auth.empty()) {
        auth = "scram-sha-256";
      }
    }
    out += "\n[users." + toml_key(u.name) + "]\n";
    if (u.password) out += "password = " + quote(*u.password) + "\n";
    out += "auth = " + quote(auth) + "\n";
    if (u.pool_mode) out += "pool_mode = " + quote(*u.pool_mode) + "\n";
  }

  // The header goes last: notes found while writing belong in it too.
  std::string header;
  header += "# pgmux configuration converted from PgBouncer by `pgmux import-pgbouncer`.\n";
  header += "# Check it with `pgmux --check-config FILE`; every key is described in etc/pgmux.toml.\n";
  if (!notes.empty()) {
    header += "#\n# Not carried over from PgBouncer:\n";
    for (const auto& n : notes) {
      std::string line = n;
      std::ranges::replace(line, '\n', ' ');
      header += "#   - " + line + "\n";
    }
  }
  result.toml = header + out;

  if (auto loaded = config::load_config_string(result.toml, "imported pgmux.toml"); !loaded) {
    return fail(Errc::Config, "the converted configuration does not load (please report this):\n" +
                                  loaded.error().message + "\n--- converted configuration ---\n" +
                                  result.toml);
  }
  return result;
}

}  // namespace pooler::app
