#pragma once
// Named prepared statements under transaction pooling. Every distinct (text, parameter
// types) gets one id per worker and one server-side name, "pgmux_<id>"; clients' own names
// map to ids, and each backend prepares an id on demand. Loop thread only.

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pooler::client {

struct PreparedStatement {
  std::uint64_t id = 0;
  std::string sql;
  std::string param_types;  // Parse's raw parameter-type block (count + oids)
  int clients = 0;          // how many client names refer to it
  bool sql_form = false;    // made by SQL PREPARE: `sql` is what follows the name
  bool validated = false;   // some backend accepted its Parse: valid SQL for this server
  // Per-shape statistics: the fingerprint of `sql`, computed at its first Bind (0 = not yet).
  mutable std::uint64_t fingerprint = 0;
};

// Hash map keyed by std::string that can be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

class PreparedRegistry {
 public:
  // The statement for this text and types, created if new; counts one more client use.
  PreparedStatement& acquire(std::string_view sql, std::span<const std::byte> param_types);
  // The same for SQL `PREPARE name <rest>`: keyed by `rest` ("(int) AS SELECT ...").
  PreparedStatement& acquire_sql(std::string_view rest);
  // One client use fewer; forgotten at zero (backends keep theirs until evicted).
  void release(std::uint64_t id);
  const PreparedStatement* find(std::uint64_t id) const;
  // The entry for this text and types if it exists (no use counted).
  const PreparedStatement* lookup(std::string_view sql, std::span<const std::byte> param_types) const;
  void mark_validated(std::uint64_t id);
  std::size_t size() const { return by_id_.size(); }

 private:
  StringMap<PreparedStatement> by_key_;
  std::unordered_map<std::uint64_t, std::string> by_id_;  // id -> key
  std::uint64_t next_id_ = 1;
};

// "pgmux_<id>" into `buf`; returns the view of it.
inline std::string_view server_statement_name(std::uint64_t id, char (&buf)[32]) {
  constexpr std::string_view kPrefix = "pgmux_";
  kPrefix.copy(buf, kPrefix.size());
  auto [end, ec] = std::to_chars(buf + kPrefix.size(), buf + sizeof buf, id);
  return {buf, static_cast<std::size_t>(end - buf)};
}

}  // namespace pooler::client
