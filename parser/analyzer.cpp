#include "parser/analyzer.h"

#include <string>

#include "parser/json_reader.h"
#include "parser/pg_query_owner.h"
#include "parser/query_shape.h"
#include "parser/statement_walk.h"

namespace parser {

using pooler::Errc;
using pooler::fail;

pooler::Result<Analysis> analyze(std::string_view sql) {
  Analysis a;
  std::string key;
  const Shape shape = scan_shape(sql, key);
  a.hint = shape.hint;
  if (sql.find('\0') != std::string_view::npos) {
    return fail(Errc::Parse, "NUL byte in query text");
  }
  const std::string text(sql);  // libpg_query wants a terminated string

  const detail::JsonParse parse(text);
  if (parse.error() != nullptr) {
    a.parse_error = true;
    a.error = detail::error_message(parse.error());
    a.fingerprint = hash_key(key, kKeyFingerprintSeed);
    a.normalized = std::move(key);
    return a;
  }
  auto doc = json::Document::parse(parse.tree());
  if (!doc) {
    return fail(Errc::Parse, "cannot read libpg_query's parse tree: " + doc.error().message);
  }
  for (json::Value entry : doc->root()["stmts"]) {
    a.statements.push_back(detail::describe_statement(entry["stmt"]));
  }

  // Both parse the text again (about as long as the parse above), once per query shape.
  const detail::Fingerprint fingerprint(text);
  a.fingerprint = fingerprint.error() == nullptr ? fingerprint.value()
                                                 : hash_key(key, kKeyFingerprintSeed);
  const detail::Normalize normalized(text);
  a.normalized = normalized.error() == nullptr ? std::string(normalized.text()) : std::move(key);
  return a;
}

}  // namespace parser
