#pragma once
// Owners of libpg_query results (internal to parser/): each frees its result exactly once,
// in its destructor. Not copyable, not movable: use them as locals.

#include <pg_query.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace parser::detail {

// The message of a libpg_query error, or "" when there is none.
inline std::string_view error_message(const PgQueryError* error) {
  return error != nullptr && error->message != nullptr ? std::string_view(error->message) : "";
}

// pg_query_parse: the parse tree as JSON.
class JsonParse {
 public:
  explicit JsonParse(const std::string& sql) : r_(pg_query_parse(sql.c_str())) {}
  ~JsonParse() { pg_query_free_parse_result(r_); }
  JsonParse(const JsonParse&) = delete;
  JsonParse& operator=(const JsonParse&) = delete;

  const PgQueryError* error() const { return r_.error; }
  std::string_view tree() const { return r_.parse_tree != nullptr ? r_.parse_tree : ""; }

 private:
  PgQueryParseResult r_;
};

// pg_query_fingerprint: one hash for every query of the same shape.
class Fingerprint {
 public:
  explicit Fingerprint(const std::string& sql) : r_(pg_query_fingerprint(sql.c_str())) {}
  ~Fingerprint() { pg_query_free_fingerprint_result(r_); }
  Fingerprint(const Fingerprint&) = delete;
  Fingerprint& operator=(const Fingerprint&) = delete;

  const PgQueryError* error() const { return r_.error; }
  std::uint64_t value() const { return r_.fingerprint; }

 private:
  PgQueryFingerprintResult r_;
};

// pg_query_normalize: the text with literals replaced by $1, $2 ...
class Normalize {
 public:
  explicit Normalize(const std::string& sql) : r_(pg_query_normalize(sql.c_str())) {}
  ~Normalize() { pg_query_free_normalize_result(r_); }
  Normalize(const Normalize&) = delete;
  Normalize& operator=(const Normalize&) = delete;

  const PgQueryError* error() const { return r_.error; }
  std::string_view text() const {
    return r_.normalized_query != nullptr ? r_.normalized_query : "";
  }

 private:
  PgQueryNormalizeResult r_;
};

}  // namespace parser::detail
