#include "router/index_advice.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "parser/json_reader.h"

namespace router {

namespace {

namespace json = parser::json;

// PostgreSQL's default planner costs, for pgmux's own estimate.
constexpr double kRandomPageCost = 4.0;
constexpr double kCpuTupleCost = 0.01;
constexpr double kCpuIndexTupleCost = 0.005;

double number(const json::Value& v) {
  if (v.type() != json::Type::Number) {
    return 0;
  }
  const std::string text = v.str();
  return std::strtod(text.c_str(), nullptr);
}

void collect(const json::Value& node, const json::Value* parent, const json::Value* grandparent,
             std::vector<SeqScan>& out, int depth) {
  if (!node.is_object() || depth > 200) {
    return;
  }
  if (node["Node Type"].str() == "Seq Scan") {
    SeqScan scan;
    scan.schema = node["Schema"].str();
    scan.relation = node["Relation Name"].str();
    scan.alias = node["Alias"].str();
    scan.filter = node["Filter"].str();
    scan.plan_rows = number(node["Plan Rows"]);
    scan.total_cost = number(node["Total Cost"]);
    if (parent != nullptr && grandparent != nullptr && (*parent)["Node Type"].str() == "Sort" &&
        (*grandparent)["Node Type"].str() == "Limit") {
      scan.sorted_for_limit = true;
      scan.limit_rows = number((*grandparent)["Plan Rows"]);
      scan.sort_cost = number((*parent)["Total Cost"]);
    }
    if (!scan.relation.empty()) {
      out.push_back(std::move(scan));
    }
  }
  for (const json::Value child : node["Plans"]) {
    collect(child, &node, parent, out, depth + 1);
  }
}

bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

// Whether `word` occurs in `text` as a whole identifier.
bool mentions(std::string_view text, std::string_view word) {
  for (std::size_t at = text.find(word); at != std::string_view::npos;
       at = text.find(word, at + 1)) {
    const bool left = at == 0 || !is_ident_char(text[at - 1]);
    const std::size_t end = at + word.size();
    const bool right = end >= text.size() || !is_ident_char(text[end]);
    if (left && right) {
      return true;
    }
  }
  return false;
}

bool has_column(const TableFacts& facts, std::string_view column) {
  return std::find(facts.columns.begin(), facts.columns.end(), column) != facts.columns.end();
}

// Whether a column reference written as `table` (after alias resolution; may be empty)
// means the relation this scan reads.
bool same_table(std::string_view table, const SeqScan& scan, const TableFacts& facts,
                std::string_view column) {
  if (table.empty()) {
    return has_column(facts, column);
  }
  return table == scan.relation || table == scan.alias ||
         table == scan.schema + "." + scan.relation;
}

bool is_equality(parser::CompareOp op) {
  using parser::CompareOp;
  return op == CompareOp::Eq || op == CompareOp::In || op == CompareOp::IsNull;
}

bool is_range(parser::CompareOp op) {
  using parser::CompareOp;
  return op == CompareOp::Lt || op == CompareOp::Le || op == CompareOp::Gt || op == CompareOp::Ge ||
         op == CompareOp::Between;
}

void add_unique(std::vector<std::string>& columns, const std::string& column) {
  if (std::find(columns.begin(), columns.end(), column) == columns.end()) {
    columns.push_back(column);
  }
}

std::optional<Proposal> refuse(std::string* why_not, std::string why) {
  if (why_not != nullptr) {
    *why_not = std::move(why);
  }
  return std::nullopt;
}

}  // namespace

pooler::Result<Plan> read_plan(std::string_view explain_json) {
  auto doc = json::Document::parse(explain_json);
  if (!doc) {
    return std::unexpected(doc.error());
  }
  const json::Value root = doc->root();
  json::Value top;
  if (root.is_array()) {
    for (const json::Value v : root) {
      top = v["Plan"];
      break;
    }
  }
  if (!top.is_object()) {
    return pooler::fail(pooler::Errc::Protocol, "not an EXPLAIN (FORMAT JSON) plan");
  }
  Plan plan;
  plan.total_cost = number(top["Total Cost"]);
  collect(top, nullptr, nullptr, plan.scans, 0);
  return plan;
}

bool plan_uses_index(std::string_view explain_json, std::string_view index_name) {
  // Index names appear only as "Index Name" values; the hypothetical ones are unique.
  return !index_name.empty() && explain_json.find(index_name) != std::string_view::npos;
}

std::optional<Proposal> propose(const Plan& plan, const SeqScan& scan, const TableFacts& facts,
                                const parser::StatementInfo& statement, const Thresholds& t,
                                std::string* why_not) {
  if (facts.rows < 0) {
    return refuse(why_not, "the table was never analysed");
  }
  if (facts.pages < t.min_table_pages || facts.rows < t.min_table_rows) {
    return refuse(why_not, "small table");
  }
  Proposal p;
  p.table = scan.schema.empty() ? scan.relation : scan.schema + "." + scan.relation;
  std::vector<std::string> equality;
  std::string range;
  if (!scan.filter.empty()) {
    for (const parser::ColumnPredicate& pred : statement.predicates) {
      if (!same_table(pred.table, scan, facts, pred.column) || !has_column(facts, pred.column) ||
          !mentions(scan.filter, pred.column)) {
        continue;
      }
      if (is_equality(pred.op)) {
        add_unique(equality, pred.column);
      } else if (is_range(pred.op) && range.empty()) {
        range = pred.column;
      }
    }
  }
  const double selectivity = facts.rows > 0 ? scan.plan_rows / facts.rows : 1.0;
  const bool selective_filter =
      (!equality.empty() || !range.empty()) && selectivity <= t.max_selectivity;
  if (selective_filter) {
    p.reason = "filter";
    p.columns = equality;
    if (!range.empty()) {
      add_unique(p.columns, range);
    }
  } else if (scan.sorted_for_limit && !statement.order_by.empty() &&
             scan.limit_rows <= t.max_selectivity * facts.rows) {
    // ORDER BY ... LIMIT: an index on the sort column reads only the first rows. Only when
    // every ORDER BY column is this table's, and only the first one is proposed.
    const parser::OrderColumn& first = statement.order_by.front();
    for (const parser::OrderColumn& o : statement.order_by) {
      if (!same_table(o.table, scan, facts, o.column) || !has_column(facts, o.column)) {
        return refuse(why_not, "ORDER BY spans other tables");
      }
    }
    p.reason = "sort";
    p.columns = equality;
    add_unique(p.columns, first.column);
  } else if (equality.empty() && range.empty() && !scan.sorted_for_limit) {
    return refuse(why_not, scan.filter.empty() ? "no filter (whole table)"
                                               : "no indexable comparison in the filter");
  } else {
    return refuse(why_not, "the filter keeps a large share of the rows");
  }
  for (const auto& index : facts.indexes) {
    if (!index.empty() && index.front() == p.columns.front()) {
      return refuse(why_not, "an existing index starts with " + p.columns.front());
    }
  }
  p.ddl = index_ddl(scan.schema, scan.relation, p.columns, /*concurrently=*/true);

  // Cost with the index, by PostgreSQL's default costs: the descent, then one random page
  // per row fetched (at most every page), then the tuples.
  const double levels =
      std::max(1.0, std::ceil(std::log(std::max(facts.rows, 2.0)) / std::log(256.0)));
  double fetched = scan.plan_rows;
  double replaced = scan.total_cost;
  if (p.reason == "sort") {
    const double keep = facts.rows > 0 && scan.plan_rows > 0 ? scan.plan_rows / facts.rows : 1.0;
    fetched = keep > 0 ? scan.limit_rows / keep : facts.rows;
    replaced = scan.sort_cost;
  }
  fetched = std::min(fetched, facts.rows);
  const double index_cost = kRandomPageCost * levels +
                            kRandomPageCost * std::min(fetched, facts.pages) +
                            (kCpuTupleCost + kCpuIndexTupleCost) * fetched;
  p.cost_before = plan.total_cost;
  p.estimated_cost_after = std::max(0.0, plan.total_cost - replaced) + index_cost;
  return p;
}

bool estimate_helps(const Proposal& proposal) {
  return proposal.cost_before > 0 && proposal.estimated_cost_after <= 0.5 * proposal.cost_before;
}

std::string quote_identifier(std::string_view name) {
  bool plain =
      !name.empty() && (std::islower(static_cast<unsigned char>(name[0])) != 0 || name[0] == '_');
  for (char c : name) {
    plain = plain && (std::islower(static_cast<unsigned char>(c)) != 0 ||
                      std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_');
  }
  if (plain) {
    return std::string(name);
  }
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  out += '"';
  return out;
}

std::string index_ddl(std::string_view schema, std::string_view relation,
                      const std::vector<std::string>& columns, bool concurrently) {
  std::string ddl = concurrently ? "CREATE INDEX CONCURRENTLY ON " : "CREATE INDEX ON ";
  if (!schema.empty()) {
    ddl += quote_identifier(schema) + ".";
  }
  ddl += quote_identifier(relation) + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    ddl += (i == 0 ? "" : ", ") + quote_identifier(columns[i]);
  }
  ddl += ")";
  return ddl;
}

}  // namespace router
