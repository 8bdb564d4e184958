#include "parser/statement.h"

#include <algorithm>

namespace parser {

std::string_view to_string(StatementKind kind) {
  switch (kind) {
    case StatementKind::Select: return "select";
    case StatementKind::Insert: return "insert";
    case StatementKind::Update: return "update";
    case StatementKind::Delete: return "delete";
    case StatementKind::Merge: return "merge";
    case StatementKind::Begin: return "begin";
    case StatementKind::Commit: return "commit";
    case StatementKind::Rollback: return "rollback";
    case StatementKind::Savepoint: return "savepoint";
    case StatementKind::TwoPhase: return "two_phase";
    case StatementKind::Set: return "set";
    case StatementKind::Reset: return "reset";
    case StatementKind::Show: return "show";
    case StatementKind::Explain: return "explain";
    case StatementKind::Copy: return "copy";
    case StatementKind::Listen: return "listen";
    case StatementKind::Unlisten: return "unlisten";
    case StatementKind::Notify: return "notify";
    case StatementKind::Lock: return "lock";
    case StatementKind::Do: return "do";
    case StatementKind::Call: return "call";
    case StatementKind::Prepare: return "prepare";
    case StatementKind::Execute: return "execute";
    case StatementKind::Deallocate: return "deallocate";
    case StatementKind::Discard: return "discard";
    case StatementKind::Declare: return "declare";
    case StatementKind::Fetch: return "fetch";
    case StatementKind::ClosePortal: return "close";
    case StatementKind::Ddl: return "ddl";
    case StatementKind::Utility: return "utility";
    case StatementKind::Other: return "other";
  }
  return "unknown";
}

std::string_view to_string(CompareOp op) {
  switch (op) {
    case CompareOp::Eq: return "=";
    case CompareOp::Ne: return "<>";
    case CompareOp::Lt: return "<";
    case CompareOp::Le: return "<=";
    case CompareOp::Gt: return ">";
    case CompareOp::Ge: return ">=";
    case CompareOp::Between: return "BETWEEN";
    case CompareOp::In: return "IN";
    case CompareOp::Like: return "LIKE";
    case CompareOp::ILike: return "ILIKE";
    case CompareOp::IsNull: return "IS NULL";
  }
  return "?";
}

bool Analysis::read_only() const {
  return !parse_error && !statements.empty() &&
         std::all_of(statements.begin(), statements.end(),
                     [](const StatementInfo& s) { return s.read_only; });
}

}  // namespace parser
