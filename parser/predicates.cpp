// What the index advisor will want from a statement: for each query level (SELECT,
// UPDATE, DELETE, MERGE, at any depth), the columns compared in WHERE and JOIN ... ON, with
// the operator, and the ORDER BY columns, resolved through the level's FROM list.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "parser/statement_walk.h"

namespace parser::detail {
namespace {

using json::Value;

// One name visible in a query level's FROM list.
struct ScopeEntry {
  std::string name;   // alias, or the relation's unqualified name
  std::string table;  // "schema.name" as written; "" for a subquery or function
};
using Scope = std::vector<ScopeEntry>;

std::optional<CompareOp> operator_of(std::string_view op) {
  if (op == "=") return CompareOp::Eq;
  if (op == "<>" || op == "!=") return CompareOp::Ne;
  if (op == "<") return CompareOp::Lt;
  if (op == "<=") return CompareOp::Le;
  if (op == ">") return CompareOp::Gt;
  if (op == ">=") return CompareOp::Ge;
  return std::nullopt;
}

// `7 < t.a` is `t.a > 7`.
CompareOp mirrored(CompareOp op) {
  switch (op) {
    case CompareOp::Lt: return CompareOp::Gt;
    case CompareOp::Le: return CompareOp::Ge;
    case CompareOp::Gt: return CompareOp::Lt;
    case CompareOp::Ge: return CompareOp::Le;
    default: return op;
  }
}

class PredicateCollector {
 public:
  explicit PredicateCollector(StatementInfo& info) : info_(info) {}

  // Finds the query levels under `v`.
  void node(Value v) {
    if (v.is_array()) {
      for (Value item : v) {
        node(item);
      }
      return;
    }
    if (!v.is_object()) {
      return;
    }
    const std::string_view type = wrapped_type(v);
    if (type == "SelectStmt" || type == "UpdateStmt" || type == "DeleteStmt" ||
        type == "MergeStmt") {
      level(type, v[type]);
      return;
    }
    members(v, {});
  }

 private:
  void members(Value body, std::initializer_list<std::string_view> skip) {
    for (Value m : body) {
      if ((m.is_object() || m.is_array()) &&
          std::find(skip.begin(), skip.end(), m.key()) == skip.end()) {
        node(m);
      }
    }
  }

  void level(std::string_view type, Value body) {
    if (type == "SelectStmt" && body["larg"].exists()) {  // UNION/INTERSECT/EXCEPT arms
      level(type, body["larg"]);
      level(type, body["rarg"]);
      members(body, {"larg", "rarg"});
      return;
    }
    Scope scope;
    std::vector<Value> conditions;
    if (type == "SelectStmt") {
      from_list(body["fromClause"], scope, conditions);
    } else if (type == "UpdateStmt") {
      relation(body["relation"], scope);
      from_list(body["fromClause"], scope, conditions);
    } else if (type == "DeleteStmt") {
      relation(body["relation"], scope);
      from_list(body["usingClause"], scope, conditions);
    } else {  // MergeStmt
      relation(body["relation"], scope);
      from_item(body["sourceRelation"], scope, conditions);
      conditions.push_back(body["joinCondition"]);
    }
    conditions.push_back(body["whereClause"]);
    scopes_.push_back(std::move(scope));
    for (Value c : conditions) {
      condition(c);
    }
    for (Value item : body["sortClause"]) {
      const Value sort = item["SortBy"];
      if (auto col = column(sort["node"])) {
        add_order(OrderColumn{col->first, col->second, sort["sortby_dir"].str() == "SORTBY_DESC"});
      }
    }
    members(body, {});  // subqueries in FROM, WHERE, the target list, CTEs
    scopes_.pop_back();
  }

  void relation(Value rv, Scope& scope) {
    if (!rv["relname"].is_string()) {
      return;
    }
    std::string table;
    if (Value schema = rv["schemaname"]; schema.exists()) {
      table = schema.str() + ".";
    }
    table += rv["relname"].str();
    const Value alias = rv["alias"]["aliasname"];
    scope.push_back({alias.exists() ? alias.str() : rv["relname"].str(), std::move(table)});
  }

  void from_list(Value list, Scope& scope, std::vector<Value>& conditions) {
    for (Value item : list) {
      from_item(item, scope, conditions);
    }
  }

  void from_item(Value item, Scope& scope, std::vector<Value>& conditions) {
    const std::string_view type = wrapped_type(item);
    const Value body = item[type];
    if (type == "RangeVar") {
      relation(body, scope);
    } else if (type == "JoinExpr") {
      from_item(body["larg"], scope, conditions);
      from_item(body["rarg"], scope, conditions);
      conditions.push_back(body["quals"]);
    } else if (Value alias = body["alias"]["aliasname"]; alias.exists()) {
      scope.push_back({alias.str(), ""});  // RangeSubselect, RangeFunction ...
    }
  }

  void condition(Value v) {
    const std::string_view type = wrapped_type(v);
    const Value body = v[type];
    if (type == "BoolExpr") {
      for (Value arg : body["args"]) {
        condition(arg);
      }
    } else if (type == "A_Expr") {
      comparison(body);
    } else if (type == "NullTest" && body["nulltesttype"].str() == "IS_NULL") {
      add(body["arg"], CompareOp::IsNull);
    }
  }

  void comparison(Value e) {
    const std::string kind = e["kind"].str();
    std::string op;
    for (Value part : e["name"]) {  // OPERATOR(pg_catalog.=) has a schema first
      op = part["String"]["sval"].str();
    }
    if (kind == "AEXPR_OP") {
      if (const auto cmp = operator_of(op)) {
        add(e["lexpr"], *cmp);
        add(e["rexpr"], mirrored(*cmp));
      }
    } else if ((kind == "AEXPR_IN" || kind == "AEXPR_OP_ANY") && op == "=") {
      add(e["lexpr"], CompareOp::In);
    } else if (kind == "AEXPR_LIKE" && op == "~~") {
      add(e["lexpr"], CompareOp::Like);
    } else if (kind == "AEXPR_ILIKE" && op == "~~*") {
      add(e["lexpr"], CompareOp::ILike);
    } else if (kind == "AEXPR_BETWEEN" || kind == "AEXPR_BETWEEN_SYM") {
      add(e["lexpr"], CompareOp::Between);
    }
  }

  // A ColumnRef resolved to (table, column); nullopt for anything else, for `*`, and for
  // columns of subqueries or functions.
  std::optional<std::pair<std::string, std::string>> column(Value v) {
    std::vector<std::string> parts;
    for (Value f : v["ColumnRef"]["fields"]) {
      if (!f["String"].exists()) {
        return std::nullopt;  // A_Star
      }
      parts.push_back(f["String"]["sval"].str());
    }
    if (parts.empty() || parts.size() > 3) {
      return std::nullopt;
    }
    if (parts.size() == 3) {
      return std::pair(parts[0] + "." + parts[1], parts[2]);
    }
    if (parts.size() == 1) {
      const Scope& scope = scopes_.back();
      if (scope.size() == 1 && scope[0].table.empty()) {
        return std::nullopt;
      }
      return std::pair(scope.size() == 1 ? scope[0].table : "", parts[0]);
    }
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {  // inner levels first
      for (const ScopeEntry& entry : *s) {
        if (entry.name == parts[0]) {
          if (entry.table.empty()) {
            return std::nullopt;
          }
          return std::pair(entry.table, parts[1]);
        }
      }
    }
    return std::pair(parts[0], parts[1]);
  }

  void add(Value v, CompareOp op) {
    if (auto col = column(v)) {
      ColumnPredicate p{std::move(col->first), std::move(col->second), op};
      if (std::find(info_.predicates.begin(), info_.predicates.end(), p) ==
          info_.predicates.end()) {
        info_.predicates.push_back(std::move(p));
      }
    }
  }

  void add_order(OrderColumn c) {
    if (std::find(info_.order_by.begin(), info_.order_by.end(), c) == info_.order_by.end()) {
      info_.order_by.push_back(std::move(c));
    }
  }

  StatementInfo& info_;
  std::vector<Scope> scopes_;
};

}  // namespace

void collect_predicates(Value stmt, StatementInfo& info) { PredicateCollector(info).node(stmt); }

}  // namespace parser::detail
