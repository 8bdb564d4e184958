// router/index_advice: what a plan says about a missing index, from EXPLAIN (FORMAT JSON,
// VERBOSE) documents shaped like PostgreSQL 15's, and the query's own analysis.
#include "router/index_advice.h"

#include <gtest/gtest.h>

#include "parser/analyzer.h"

namespace router {
namespace {

// A plan with one Seq Scan of public.orders returning `rows`, under optional Sort/Limit.
std::string seq_scan_plan(double rows, const std::string& filter, bool sort_limit = false) {
  const std::string scan =
      R"({"Node Type": "Seq Scan", "Parallel Aware": false, "Relation Name": "orders", )"
      R"("Schema": "public", "Alias": "o", "Startup Cost": 0.00, "Total Cost": 1510.00, )"
      R"("Plan Rows": )" + std::to_string(rows) + R"(, "Plan Width": 40)" +
      (filter.empty() ? std::string() : R"(, "Filter": ")" + filter + R"(")") + "}";
  if (!sort_limit) {
    return R"([{"Plan": )" + scan + "}]";
  }
  return R"([{"Plan": {"Node Type": "Limit", "Total Cost": 2656.6, "Plan Rows": 10, "Plans": [)"
         R"({"Node Type": "Sort", "Total Cost": 2650.0, "Plan Rows": 60000, "Sort Key": ["o.created_at DESC"], "Plans": [)" +
         scan + "]}]}}]";
}

TableFacts orders_facts() {
  TableFacts f;
  f.rows = 60000;
  f.pages = 760;
  f.columns = {"id", "customer_id", "product_id", "created_at", "status"};
  f.indexes = {{"id"}};
  return f;
}

parser::StatementInfo statement_of(const std::string& sql) {
  auto a = parser::analyze(sql);
  EXPECT_TRUE(a.has_value());
  EXPECT_EQ(a->statements.size(), 1u);
  return a->statements.front();
}

Thresholds small_thresholds() {
  Thresholds t;
  t.min_table_pages = 100;
  t.min_table_rows = 5000;
  return t;
}

TEST(IndexAdvice, ReadsSeqScansAndSortUnderLimit) {
  auto plan = read_plan(seq_scan_plan(3, "(o.customer_id = 42)"));
  ASSERT_TRUE(plan.has_value());
  EXPECT_DOUBLE_EQ(plan->total_cost, 1510.0);
  ASSERT_EQ(plan->scans.size(), 1u);
  EXPECT_EQ(plan->scans[0].schema, "public");
  EXPECT_EQ(plan->scans[0].relation, "orders");
  EXPECT_EQ(plan->scans[0].alias, "o");
  EXPECT_FALSE(plan->scans[0].sorted_for_limit);

  auto sorted = read_plan(seq_scan_plan(60000, "", true));
  ASSERT_TRUE(sorted.has_value());
  ASSERT_EQ(sorted->scans.size(), 1u);
  EXPECT_TRUE(sorted->scans[0].sorted_for_limit);
  EXPECT_DOUBLE_EQ(sorted->scans[0].limit_rows, 10);

  EXPECT_FALSE(read_plan("not json").has_value());
  EXPECT_FALSE(read_plan("[{}]").has_value());
}

TEST(IndexAdvice, EqualityColumnsFirstThenOneRange) {
  auto plan = read_plan(seq_scan_plan(2, "((o.created_at >= $2) AND (o.customer_id = $1))"));
  ASSERT_TRUE(plan.has_value());
  const auto st = statement_of(
      "SELECT id FROM orders o WHERE o.created_at >= $2 AND o.customer_id = $1");
  std::string why;
  auto p = propose(*plan, plan->scans[0], orders_facts(), st, small_thresholds(), &why);
  ASSERT_TRUE(p.has_value()) << why;
  EXPECT_EQ(p->table, "public.orders");
  EXPECT_EQ(p->columns, (std::vector<std::string>{"customer_id", "created_at"}));
  EXPECT_EQ(p->reason, "filter");
  EXPECT_EQ(p->ddl, "CREATE INDEX CONCURRENTLY ON public.orders (customer_id, created_at)");
  EXPECT_TRUE(estimate_helps(*p));
}

TEST(IndexAdvice, SortForLimit) {
  auto plan = read_plan(seq_scan_plan(60000, "", true));
  const auto st = statement_of("SELECT * FROM orders o ORDER BY o.created_at DESC LIMIT 10");
  std::string why;
  auto p = propose(*plan, plan->scans[0], orders_facts(), st, small_thresholds(), &why);
  ASSERT_TRUE(p.has_value()) << why;
  EXPECT_EQ(p->reason, "sort");
  EXPECT_EQ(p->columns, (std::vector<std::string>{"created_at"}));
  EXPECT_TRUE(estimate_helps(*p));
}

TEST(IndexAdvice, NoAdviceForSmallTablesLargeSharesWholeTablesOrServedColumns) {
  std::string why;
  const auto st = statement_of("SELECT * FROM orders o WHERE o.customer_id = 1");
  auto plan = read_plan(seq_scan_plan(3, "(o.customer_id = 1)"));

  TableFacts tiny = orders_facts();
  tiny.pages = 10;
  EXPECT_FALSE(propose(*plan, plan->scans[0], tiny, st, small_thresholds(), &why));
  EXPECT_EQ(why, "small table");

  auto wide = read_plan(seq_scan_plan(20000, "(o.customer_id = 1)"));  // a third of the rows
  EXPECT_FALSE(propose(*wide, wide->scans[0], orders_facts(), st, small_thresholds(), &why));
  EXPECT_EQ(why, "the filter keeps a large share of the rows");

  auto whole = read_plan(seq_scan_plan(60000, ""));
  EXPECT_FALSE(propose(*whole, whole->scans[0], orders_facts(),
                       statement_of("SELECT count(*) FROM orders"), small_thresholds(), &why));

  TableFacts served = orders_facts();
  served.indexes.push_back({"customer_id", "status"});
  EXPECT_FALSE(propose(*plan, plan->scans[0], served, st, small_thresholds(), &why));
  EXPECT_EQ(why, "an existing index starts with customer_id");

  TableFacts unanalysed = orders_facts();
  unanalysed.rows = -1;
  EXPECT_FALSE(propose(*plan, plan->scans[0], unanalysed, st, small_thresholds(), &why));
}

TEST(IndexAdvice, OnlyColumnsTheScanFiltersOn) {
  // The join condition is not this scan's filter: only status is, and it is a range.
  auto plan = read_plan(seq_scan_plan(5, "(o.product_id < 3)"));
  const auto st = statement_of(
      "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.product_id < 3");
  std::string why;
  auto p = propose(*plan, plan->scans[0], orders_facts(), st, small_thresholds(), &why);
  ASSERT_TRUE(p.has_value()) << why;
  EXPECT_EQ(p->columns, (std::vector<std::string>{"product_id"}));
}

TEST(IndexAdvice, QuotesIdentifiersThatNeedIt) {
  EXPECT_EQ(quote_identifier("orders"), "orders");
  EXPECT_EQ(quote_identifier("Orders"), "\"Orders\"");
  EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(index_ddl("s", "My Table", {"x", "Y"}, false), "CREATE INDEX ON s.\"My Table\" (x, \"Y\")");
  EXPECT_TRUE(plan_uses_index(R"({"Index Name": "<1234>btree_orders_x"})", "<1234>btree_orders_x"));
  EXPECT_FALSE(plan_uses_index(R"({"Node Type": "Seq Scan"})", "<1234>btree_orders_x"));
}

}  // namespace
}  // namespace router
