#pragma once
// Internal to parser/: turning one statement of libpg_query's JSON parse tree into a
// StatementInfo.
//
// libpg_query's JSON wraps a node whose type is not fixed by its field in an object with
// one member named after the type ({"SelectStmt": {...}}); fields of a fixed type are bare
// (InsertStmt.relation is {"relname": ...}, SelectStmt.larg is the SelectStmt's body).
// Fields holding zero, false or NULL are left out.

#include "parser/json_reader.h"
#include "parser/statement.h"

namespace parser::detail {

// {"SelectStmt": {...}} -> "SelectStmt"; a bare struct or anything else -> "".
inline std::string_view wrapped_type(json::Value v) {
  const std::string_view key = v.only_key();
  return !key.empty() && key[0] >= 'A' && key[0] <= 'Z' ? key : std::string_view();
}

// `stmt` is the wrapped statement node (the "stmt" member of one entry of "stmts").
StatementInfo describe_statement(json::Value stmt);

// Index-advisor inputs (predicates.cpp): adds the WHERE/JOIN comparisons and ORDER BY
// columns of every query level under `stmt` to `info`.
void collect_predicates(json::Value stmt, StatementInfo& info);

}  // namespace parser::detail
