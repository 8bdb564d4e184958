#pragma once
// Judging one query's plan for a missing index: pure functions, no I/O. The advisor
// (pooler/advice) runs EXPLAIN and reads the catalogue; this decides what the plan says.
//
// A plan needs an index when it reads a large table with a Seq Scan whose Filter keeps a
// small share of the rows, or sorts a large Seq Scan for ORDER BY ... LIMIT. The proposal
// takes the columns the query compares on that table: equality columns first (in the
// order written), then one range column, or the sort column. Nothing is proposed for a
// small table, a filter that keeps a large share of the rows, a scan without a filter
// (whole-table aggregates), or where an existing index starts with the same column (the
// planner had it and chose the Seq Scan anyway).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parser/statement.h"
#include "pooler/base/result.h"

namespace router {

// One Seq Scan of an EXPLAIN (FORMAT JSON, VERBOSE) plan, with its estimates.
struct SeqScan {
  std::string schema;
  std::string relation;
  std::string alias;
  std::string filter;     // the Filter expression as EXPLAIN prints it ("" = none)
  double plan_rows = 0;   // rows the scan is estimated to return (after its filter)
  double total_cost = 0;  // the scan node's total cost
  // Set when the scan feeds a Sort right under a Limit (ORDER BY ... LIMIT n).
  bool sorted_for_limit = false;
  double limit_rows = 0;  // the Limit's estimated rows
  double sort_cost = 0;   // the Sort node's total cost (it includes the scan's)
};

struct Plan {
  double total_cost = 0;  // the root node's
  std::vector<SeqScan> scans;
};

// The plan of one statement. An error when the text is not an EXPLAIN JSON document.
[[nodiscard]] pooler::Result<Plan> read_plan(std::string_view explain_json);

// Whether any node of the plan uses the index named `index_name` (hypopg's hypothetical
// indexes appear under their made-up name, e.g. "<16437>btree_orders_customer_id").
bool plan_uses_index(std::string_view explain_json, std::string_view index_name);

// What the catalogue says about the table a Seq Scan reads.
struct TableFacts {
  double rows = 0;                                // pg_class.reltuples (negative: never analysed)
  double pages = 0;                               // the relation's size in blocks
  std::vector<std::string> columns;               // its column names
  std::vector<std::vector<std::string>> indexes;  // key columns of each valid index
};

struct Thresholds {
  double min_table_pages = 1000;
  double min_table_rows = 10'000;
  double max_selectivity = 0.05;
};

struct Proposal {
  std::string table;                 // "schema.name", as in the plan
  std::vector<std::string> columns;  // key columns, in order
  std::string reason;                // "filter" or "sort"
  std::string ddl;                   // CREATE INDEX CONCURRENTLY ON ... (...)
  double cost_before = 0;            // the plan's total cost
  double estimated_cost_after = 0;   // pgmux's estimate with the index
};

// The index that `scan` lacks, given the query's statement (its predicates and ORDER BY)
// and the table's facts; or why none is proposed (for logs).
std::optional<Proposal> propose(const Plan& plan, const SeqScan& scan, const TableFacts& facts,
                                const parser::StatementInfo& statement, const Thresholds& t,
                                std::string* why_not);

// pgmux's own judgment without hypopg: the estimated cost must fall by at least half.
bool estimate_helps(const Proposal& proposal);

// An identifier as PostgreSQL would print it: bare when it is a plain lower-case name,
// double-quoted otherwise.
std::string quote_identifier(std::string_view name);

// CREATE INDEX [CONCURRENTLY] ON schema.table (a, b)
std::string index_ddl(std::string_view schema, std::string_view relation,
                      const std::vector<std::string>& columns, bool concurrently);

}  // namespace router
