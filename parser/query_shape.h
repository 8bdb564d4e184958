#pragma once
// The cheap look at a query that runs on every simple-protocol Query, before any parse: a
// literal-free key so that queries differing only in literal values share one cache entry,
// the routing hint from a comment, and the first keyword for fast_classify. One pass, no
// allocation once `key` has grown to the size of the queries seen.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parser/statement.h"

namespace parser {

// The first keyword of the first statement, as far as fast_classify cares.
enum class FirstKeyword : std::uint8_t {
  None,  // no statement, or it starts with something else than a keyword ("(", "WITH" ...)
  Insert, Update, Delete, Merge, Create, Alter, Drop, Truncate, Grant, Revoke, Copy,
  Set, Explain,
  Other,  // any other word
};

struct Shape {
  std::optional<Hint> hint = std::nullopt;  // a comment with pgmux:primary or pgmux:replica
  int statements = 0;        // non-empty statements (separated by ';' outside quotes)
  FirstKeyword first_keyword = FirstKeyword::None;
  bool copy_from = false;     // first statement is COPY with FROM outside parentheses
  bool unterminated = false;  // a quote, dollar quote or comment runs to the end of the text
};

// Writes the shape key of `sql` into `key` (cleared first) and describes the query.
//
// The key is the text with:
//   - every literal replaced by '?': '...' (with ''), E'...' (with '' and backslash
//     escapes), U&'...', B'...', X'...', N'...', $$...$$ and $tag$...$tag$, numbers
//     (42, 1.5e-3, .5, 0x1F and any digits-and-letters run PostgreSQL would reject);
//     runs of literals in a list collapse: IN (1, 2, 3) and IN (4) give IN(?), and
//     VALUES (1,'a'),(2,'b') gives VALUES(?);
//   - comments removed (-- to end of line, nested /* */), except that a hint is kept as
//     a marker at the end of the key;
//   - whitespace runs reduced to one space, and dropped next to ( ) , ; [ ];
//   - trailing and empty statements (";") removed.
// Keywords, identifiers (also "quoted" and U&"quoted"), operators and $n parameters stay as
// written. Statements whose first keyword is SET or EXPLAIN keep their literals verbatim,
// because there the values change the analysis (SET pgmux.route = 'replica', EXPLAIN
// (ANALYZE 0)). Everything the router looks at (statement kinds, tables, functions,
// locking clauses, CTEs) is keywords and identifiers, so two queries with the same key
// get the same route.
Shape scan_shape(std::string_view sql, std::string& key);

// Statements that obviously write, by their first keyword, without a parse: a single
// statement starting with INSERT, UPDATE, DELETE, MERGE (kind Insert ... Merge), CREATE,
// ALTER, DROP, TRUNCATE, GRANT, REVOKE (Ddl) or COPY ... FROM (Copy). nullopt: parse it.
std::optional<StatementKind> fast_classify(const Shape& shape);
std::optional<StatementKind> fast_classify(std::string_view sql);

// Seed of the fingerprints made from a literal-free key (shallow analyses, parse errors).
inline constexpr std::uint64_t kKeyFingerprintSeed = 0x70676d7578ULL;  // "pgmux"

// A fast 64-bit hash for cache keys (not cryptographic; equal keys are compared anyway).
std::uint64_t hash_key(std::string_view key, std::uint64_t seed);

}  // namespace parser
