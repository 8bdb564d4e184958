#include "parser/statement_walk.h"

#include <algorithm>
#include <string>
#include <vector>

namespace parser::detail {
namespace {

using json::Value;

std::string to_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c + 32);
    }
  }
  return s;
}

void add_unique(std::vector<std::string>& list, std::string item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) {
    list.push_back(std::move(item));
  }
}

// A list of {"String": {"sval": ...}} joined with '.': qualified names.
std::string dotted(Value names) {
  std::string out;
  for (Value part : names) {
    if (!out.empty()) {
      out += '.';
    }
    out += part["String"]["sval"].str();
  }
  return out;
}

// The text of a constant: {"A_Const": {"sval": {"sval": "x"}}}, {"Integer": {"ival": 1}} ...
// Zero and false are left out of libpg_query's JSON, so {"ival": {}} is 0.
std::string const_text(Value wrapped) {
  Value c = wrapped["A_Const"];
  if (!c.exists()) {
    c = wrapped;  // Integer, String, Float, Boolean nodes carry the same members
    if (Value i = c["Integer"]; i.exists()) {
      return i["ival"].exists() ? i["ival"].str() : "0";
    }
    if (Value s = c["String"]; s.exists()) {
      return s["sval"].str();
    }
    if (Value f = c["Float"]; f.exists()) {
      return f["fval"].str();
    }
    if (Value b = c["Boolean"]; b.exists()) {
      return b["boolval"].as_bool() ? "true" : "false";
    }
    return {};
  }
  if (Value v = c["sval"]; v.exists()) {
    return v["sval"].str();
  }
  if (Value v = c["ival"]; v.exists()) {
    return v["ival"].exists() ? v["ival"].str() : "0";
  }
  if (Value v = c["fval"]; v.exists()) {
    return v["fval"].str();
  }
  if (Value v = c["boolval"]; v.exists()) {
    return v["boolval"].as_bool() ? "true" : "false";
  }
  return {};
}

// PostgreSQL's parse_bool: true/false, yes/no, on/off, 1/0 and unambiguous prefixes.
std::optional<bool> parse_bool(std::string_view text) {
  const std::string s = to_lower(std::string(text));
  auto prefix_of = [&](std::string_view word, std::size_t min) {
    return s.size() >= min && s.size() <= word.size() && word.substr(0, s.size()) == s;
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || s == "on" || s == "1") {
    return true;
  }
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") {
    return false;
  }
  return std::nullopt;
}

// A DefElem's boolean argument as EXPLAIN reads it: no argument means true; anything we
// cannot read counts as true (EXPLAIN ANALYZE then follows the inner statement).
bool option_true(Value def_elem) {
  const Value arg = def_elem["arg"];
  if (!arg.exists()) {
    return true;
  }
  return parse_bool(const_text(arg)).value_or(true);
}

// transaction_read_only in a list of DefElem options (BEGIN, SET TRANSACTION ...).
std::optional<bool> read_only_option(Value options) {
  std::optional<bool> result;
  for (Value item : options) {
    const Value def = item["DefElem"];
    if (def["defname"].str() == "transaction_read_only") {
      result = const_text(def["arg"]) != "0";
    }
  }
  return result;
}

bool one_of(std::string_view s, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool is_write_statement(std::string_view type) {
  return one_of(type, {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"});
}

void classify(std::string_view type, Value body, StatementInfo& info);

// read_only of a nested statement (EXPLAIN ANALYZE x, COPY (x) TO, PREPARE p AS x ...).
bool inner_read_only(Value wrapped) {
  StatementInfo inner;
  const std::string_view type = wrapped_type(wrapped);
  classify(type, wrapped[type], inner);
  return inner.read_only;
}

void transaction(Value body, StatementInfo& info) {
  const std::string kind = body["kind"].str();
  info.read_only = true;
  info.chain = body["chain"].as_bool();
  if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
    info.kind = StatementKind::Begin;
    info.begin_read_only = read_only_option(body["options"]);
  } else if (kind == "TRANS_STMT_COMMIT") {
    info.kind = StatementKind::Commit;
  } else if (kind == "TRANS_STMT_ROLLBACK") {
    info.kind = StatementKind::Rollback;
  } else if (one_of(kind, {"TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE",
                           "TRANS_STMT_ROLLBACK_TO"})) {
    info.kind = StatementKind::Savepoint;
  } else {  // PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED
    info.kind = StatementKind::TwoPhase;
    info.read_only = false;
  }
}

void variable_set(Value body, StatementInfo& info) {
  const std::string kind = body["kind"].str();
  info.set_name = to_lower(body["name"].str());
  info.set_local = body["is_local"].as_bool();
  if (kind == "VAR_RESET_ALL") {
    info.kind = StatementKind::Reset;
    info.set_name = "all";
    return;
  }
  if (kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT") {
    info.kind = StatementKind::Reset;
    return;
  }
  info.kind = StatementKind::Set;
  if (kind == "VAR_SET_MULTI") {
    const std::optional<bool> ro = read_only_option(body["args"]);
    if (info.set_name == "transaction") {
      // Scoped to the current transaction and changing nothing else: safe anywhere, and
      // `SET TRANSACTION READ ONLY` must not by itself pull a transaction to the primary.
      info.read_only = true;
      info.begin_read_only = ro;
    } else if (info.set_name == "session characteristics" && ro) {
      info.set_name = "default_transaction_read_only";
      info.set_value = *ro ? "on" : "off";
      info.begin_read_only = ro;
    }
    return;
  }
  for (Value arg : body["args"]) {
    if (!info.set_value.empty()) {
      info.set_value += ", ";
    }
    info.set_value += const_text(arg);
  }
}

void explain(Value body, StatementInfo& info) {
  info.kind = StatementKind::Explain;
  for (Value item : body["options"]) {
    const Value def = item["DefElem"];
    if (def["defname"].str() == "analyze") {
      info.explain_analyze = option_true(def);
    }
  }
  // Without ANALYZE nothing runs (not even volatile functions: the planner folds only
  // immutable and stable ones), so EXPLAIN of a write is read-only.
  info.read_only = info.explain_analyze ? inner_read_only(body["query"]) : true;
}

void copy(Value body, StatementInfo& info) {
  info.kind = StatementKind::Copy;
  // Only COPY ... TO STDOUT of a read-only source: TO 'file' and TO PROGRAM act on the
  // server's host, which should be the primary's.
  const bool to_client = !body["is_from"].as_bool() && !body["filename"].exists() &&
                         !body["is_program"].as_bool();
  const Value query = body["query"];
  info.read_only = to_client && (!query.exists() || inner_read_only(query));
}

bool is_ddl(std::string_view type) {
  return type.starts_with("Create") || type.starts_with("Alter") || type.starts_with("Drop") ||
         one_of(type, {"TruncateStmt", "GrantStmt", "GrantRoleStmt", "CommentStmt", "RenameStmt",
                       "RuleStmt", "IndexStmt", "ViewStmt", "DefineStmt", "CompositeTypeStmt",
                       "SecLabelStmt", "ImportForeignSchemaStmt", "RefreshMatViewStmt",
                       "ReassignOwnedStmt"});
}

void classify(std::string_view type, Value body, StatementInfo& info) {
  using K = StatementKind;
  info.read_only = false;
  if (type == "SelectStmt") {
    info.kind = K::Select;
    info.read_only = true;
  } else if (type == "InsertStmt") {
    info.kind = K::Insert;
  } else if (type == "UpdateStmt") {
    info.kind = K::Update;
  } else if (type == "DeleteStmt") {
    info.kind = K::Delete;
  } else if (type == "MergeStmt") {
    info.kind = K::Merge;
  } else if (type == "TransactionStmt") {
    transaction(body, info);
  } else if (type == "VariableSetStmt") {
    variable_set(body, info);
  } else if (type == "VariableShowStmt") {
    info.kind = K::Show;
    info.read_only = true;
    info.set_name = to_lower(body["name"].str());
  } else if (type == "ExplainStmt") {
    explain(body, info);
  } else if (type == "CopyStmt") {
    copy(body, info);
  } else if (type == "ListenStmt" || type == "UnlistenStmt" || type == "NotifyStmt") {
    info.kind = type == "ListenStmt" ? K::Listen : type == "NotifyStmt" ? K::Notify : K::Unlisten;
    info.object_name = body["conditionname"].str();
  } else if (type == "LockStmt") {
    info.kind = K::Lock;
  } else if (type == "DoStmt") {
    info.kind = K::Do;
  } else if (type == "CallStmt") {
    info.kind = K::Call;
  } else if (type == "PrepareStmt") {
    info.kind = K::Prepare;
    info.object_name = body["name"].str();
    info.read_only = inner_read_only(body["query"]);
  } else if (type == "ExecuteStmt") {
    info.kind = K::Execute;  // read-only or not is known from its PREPARE, not from here
    info.object_name = body["name"].str();
  } else if (type == "DeallocateStmt") {
    info.kind = K::Deallocate;
    info.object_name = body["name"].str();
  } else if (type == "DiscardStmt") {
    info.kind = K::Discard;
    const std::string target = body["target"].str();  // DISCARD_ALL, DISCARD_PLANS ...
    info.object_name = to_lower(target.substr(std::min<std::size_t>(target.size(), 8)));
  } else if (type == "DeclareCursorStmt") {
    info.kind = K::Declare;
    info.object_name = body["portalname"].str();
    info.with_hold = (body["options"].as_int() & 0x20) != 0;  // CURSOR_OPT_HOLD
    info.read_only = inner_read_only(body["query"]);
  } else if (type == "FetchStmt") {
    info.kind = K::Fetch;
    info.object_name = body["portalname"].str();
  } else if (type == "ClosePortalStmt") {
    info.kind = K::ClosePortal;
    info.object_name = body["portalname"].str();
  } else if (is_ddl(type)) {
    info.kind = K::Ddl;
  } else if (one_of(type, {"VacuumStmt", "CheckPointStmt", "ClusterStmt", "ReindexStmt",
                           "LoadStmt", "ConstraintsSetStmt"})) {
    info.kind = K::Utility;
  } else {
    info.kind = K::Other;
  }
}

// The walk over the whole statement tree: relations, function calls, locking clauses,
// data-modifying CTEs, SELECT INTO, at any depth.
class Collector {
 public:
  explicit Collector(StatementInfo& info) : info_(info) {}

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
    if (const std::string_view type = wrapped_type(v); !type.empty()) {
      typed(type, v[type]);
      return;
    }
    // A bare struct: a RangeVar in a typed field (InsertStmt.relation, IntoClause.rel), a
    // SelectStmt body (larg/rarg), a WithClause ...
    if (v["relname"].is_string()) {
      range_var(v);
    }
    members(v);
  }

  const std::vector<std::string>& ctes() const { return ctes_; }

 private:
  void members(Value body) {
    for (Value m : body) {
      if (m.is_object() || m.is_array()) {
        node(m);
      }
    }
  }

  void typed(std::string_view type, Value body) {
    if (type == "FuncCall") {
      add_unique(info_.functions, to_lower(dotted(body["funcname"])));
      members(body);
    } else if (type == "CallStmt") {
      add_unique(info_.functions, to_lower(dotted(body["funccall"]["funcname"])));
      members(body["funccall"]);
    } else if (type == "RangeVar") {
      range_var(body);
    } else if (type == "LockingClause") {
      info_.locking_clause = true;  // lockedRels name relations already in FROM (or aliases)
    } else if (type == "CommonTableExpr") {
      add_unique(ctes_, body["ctename"].str());
      if (is_write_statement(wrapped_type(body["ctequery"]))) {
        info_.data_modifying_cte = true;
      }
      members(body);
    } else if (type == "SelectStmt") {
      if (body["intoClause"].exists()) {
        info_.select_into = true;
      }
      members(body);
    } else {
      members(body);
    }
  }

  void range_var(Value rv) {
    std::string name;
    for (const char* part : {"catalogname", "schemaname"}) {
      if (Value p = rv[part]; p.exists()) {
        name += p.str();
        name += '.';
      }
    }
    name += rv["relname"].str();
    add_unique(info_.tables, std::move(name));
  }

  StatementInfo& info_;
  std::vector<std::string> ctes_;
};

template <typename T, typename Pred>
void erase_if_table(std::vector<T>& list, Pred is_cte) {
  std::erase_if(list, [&](const T& item) { return is_cte(item.table); });
}

}  // namespace

StatementInfo describe_statement(Value stmt) {
  StatementInfo info;
  const std::string_view type = wrapped_type(stmt);
  classify(type, stmt[type], info);

  Collector collector(info);
  collector.node(stmt);
  if (info.locking_clause || info.data_modifying_cte || info.select_into) {
    info.read_only = false;
  }
  collect_predicates(stmt, info);

  // FROM x where x is a CTE of the statement names no relation.
  const auto& ctes = collector.ctes();
  auto is_cte = [&](const std::string& name) {
    return std::find(ctes.begin(), ctes.end(), name) != ctes.end();
  };
  std::erase_if(info.tables, is_cte);
  erase_if_table(info.predicates, is_cte);
  erase_if_table(info.order_by, is_cte);
  return info;
}

}  // namespace parser::detail
