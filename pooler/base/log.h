#pragma once
// Logging setup: spdlog, text on a terminal or JSON lines. Loggers are thread-safe
// (spdlog's _mt sinks); the hot path calls them only at debug level behind a level check.

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace pooler::log {

enum class Format { Text, Json };

// Installs the default logger writing to stderr. Safe to call again (reload).
void setup(Format format, spdlog::level::level_enum level);
void set_level(spdlog::level::level_enum level);

// "info" -> level; false when the name is unknown.
bool parse_level(std::string_view name, spdlog::level::level_enum& out);

// Escapes `text` for inclusion in a JSON string (log messages in JSON format).
std::string json_escape(std::string_view text);

// The first line of a (libpq) message, without its newline; "" for nullptr.
std::string first_line(const char* message);

// A log line with fields: "message key=value ..." as text, and in JSON format each field
// a member of the line's object ({"ts":...,"msg":"message","key":"value",...}).
struct Field {
  std::string_view key;
  std::string value;
  bool quoted = true;  // false: `value` is a JSON number or boolean as written
};
void event(spdlog::level::level_enum level, std::string_view message,
           std::initializer_list<Field> fields);

}  // namespace pooler::log
