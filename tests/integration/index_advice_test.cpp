// Index advice (issue 5) against the fixture's real PostgreSQL: the query shapes that scan a
// large table for a few rows, or sort it for a LIMIT, get one record each with the CREATE INDEX
// that fixes them; shapes an index already serves, tiny tables, low-cardinality filters and
// whole-table aggregates get none. Checked through the JSON-lines file, the log, SHOW
// INDEX_ADVICE, SHOW QUERIES and /metrics; judged with hypopg (database app) and by pgmux's own
// estimate (database other); with simple and extended protocol (text and binary parameters),
// the client's search_path, a DELETE, parallel plans and the default thresholds, a replica as
// the target, records that change, a bounded shape table; and with the advisor's side
// connection failing (wrong password, server down) while queries keep flowing.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/pg_client.h"
#include "tests/integration/pgmux_process.h"
#include "tests/integration/postgres_environment.h"
#include "tests/integration/test_util.h"

namespace pooler::integration {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Most probes here re-read and parse whole files: poll every 100 ms, not wait_for's 20 ms.
constexpr auto kPoll = 100ms;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string without_spaces(std::string text) {
  std::erase_if(text, [](unsigned char c) { return std::isspace(c) != 0; });
  return text;
}

// ---- A small JSON reader: enough for one advice record per line ----------------------------

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  const Json* get(const std::string& key) const {
    const auto it = fields.find(key);
    return it == fields.end() ? nullptr : &it->second;
  }
  // The string field `key`; "" if it is missing or not a string.
  std::string str(const std::string& key) const {
    const Json* v = get(key);
    return v != nullptr && v->kind == Kind::String ? v->text : "";
  }
  bool has_number(const std::string& key) const {
    const Json* v = get(key);
    return v != nullptr && v->kind == Kind::Number;
  }
  double num(const std::string& key) const { return has_number(key) ? get(key)->number : -1; }
  // The strings in the array field `key`.
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    if (const Json* v = get(key); v != nullptr && v->kind == Kind::Array) {
      for (const auto& item : v->items) {
        if (item.kind == Kind::String) {
          out.push_back(item.text);
        }
      }
    }
    return out;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  // The value that is the whole text, or nullopt if the text is not one JSON value.
  std::optional<Json> document() {
    Json value;
    if (!read_value(value, 0)) {
      return std::nullopt;
    }
    skip_space();
    return pos_ == text_.size() ? std::optional<Json>(std::move(value)) : std::nullopt;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      ++pos_;
    }
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool word(std::string_view w) {
    if (text_.substr(pos_, w.size()) != w) {
      return false;
    }
    pos_ += w.size();
    return true;
  }

  bool read_value(Json& out, int depth) {
    skip_space();
    if (depth > 32 || pos_ >= text_.size()) {
      return false;
    }
    if (eat('{')) {
      out.kind = Json::Kind::Object;
      if (eat('}')) {
        return true;
      }
      do {
        std::string key;
        Json value;
        skip_space();
        if (!read_string(key) || !eat(':') || !read_value(value, depth + 1)) {
          return false;
        }
        out.fields[key] = std::move(value);
      } while (eat(','));
      return eat('}');
    }
    if (eat('[')) {
      out.kind = Json::Kind::Array;
      if (eat(']')) {
        return true;
      }
      do {
        out.items.emplace_back();
        if (!read_value(out.items.back(), depth + 1)) {
          return false;
        }
      } while (eat(','));
      return eat(']');
    }
    if (text_[pos_] == '"') {
      out.kind = Json::Kind::String;
      return read_string(out.text);
    }
    if (word("true")) {
      out.kind = Json::Kind::Bool;
      out.boolean = true;
      return true;
    }
    if (word("false")) {
      out.kind = Json::Kind::Bool;
      return true;
    }
    if (word("null")) {
      return true;
    }
    const std::size_t start = pos_;
    while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) != 0 ||
                                   contains("+-.eE", std::string(1, text_[pos_])))) {
      ++pos_;
    }
    const std::string number(text_.substr(start, pos_ - start));
    char* end = nullptr;
    out.kind = Json::Kind::Number;
    out.number = std::strtod(number.c_str(), &end);
    return !number.empty() && end == number.c_str() + number.size();
  }

  bool read_string(std::string& out) {
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      return false;
    }
    ++pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') {
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return false;  // raw control characters are not valid JSON
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) {
        return false;
      }
      const char e = text_[pos_++];
      static constexpr std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
      if (const auto at = kFrom.find(e); at != std::string_view::npos) {
        out += kTo[at];
        continue;
      }
      if (e != 'u' || pos_ + 4 > text_.size()) {
        return false;
      }
      // \uXXXX as UTF-8 (surrogate pairs are not joined: nothing here needs them).
      const unsigned code = std::stoul(std::string(text_.substr(pos_, 4)), nullptr, 16);
      pos_ += 4;
      if (code < 0x80) {
        out += static_cast<char>(code);
      } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      }
    }
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---- The record file -----------------------------------------------------------------------

struct AdviceFile {
  std::string text;
  std::vector<std::string> bad_lines;  // lines that are not one JSON object
  int line_count = 0;
  // The latest line for each (database, fingerprint): that is the record.
  std::map<std::pair<std::string, std::string>, Json> records;
};

AdviceFile read_advice(const std::string& path) {
  AdviceFile out;
  out.text = read_text(path);
  std::istringstream in(out.text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      continue;
    }
    ++out.line_count;
    auto json = JsonReader(line).document();
    if (!json || json->kind != Json::Kind::Object) {
      out.bad_lines.push_back(line);
      continue;
    }
    out.records[{json->str("database"), json->str("fingerprint")}] = std::move(*json);
  }
  return out;
}

std::string describe(const AdviceFile& file) {
  std::ostringstream out;
  out << file.records.size() << " record(s) in " << file.line_count << " line(s):\n" << file.text;
  return out.str();
}

// ---- The workload --------------------------------------------------------------------------

constexpr int kMinCalls = 5;
constexpr int kCallsPerShape = 8;  // every shape runs more often than min_calls

// A shape that lacks an index on orders, and the index it should get.
struct ExpectedShape {
  std::string name;
  std::vector<std::string> columns;   // key columns, in order
  std::string reason;                 // "filter" or "sort"
  std::vector<std::string> literals;  // values the workload sent; never in the record
};

const std::vector<ExpectedShape>& expected_shapes() {
  static const std::vector<ExpectedShape> shapes = {
      {"by_customer", {"customer_id"}, "filter", {"4201", "4202", "4205", "4208"}},
      {"by_customer_since",
       {"customer_id", "created_at"},
       "filter",
       {"7301", "7302", "7305", "7308", "2024-10-01"}},
      {"by_product", {"product_id"}, "filter", {"1701", "1702", "1705", "1708"}},
      {"latest", {"created_at"}, "sort", {"10"}},
  };
  return shapes;
}

// The expected shape a normalized query is, or nullptr.
const ExpectedShape* shape_of(const std::string& query) {
  const std::string q = lower(query);
  std::string name;
  if (!contains(q, "orders")) {
    name = "";
  } else if (contains(q, "order by") && contains(q, "created_at")) {
    name = "latest";
  } else if (contains(q, "customer_id") && contains(q, "created_at")) {
    name = "by_customer_since";
  } else if (contains(q, "customer_id")) {
    name = "by_customer";
  } else if (contains(q, "product_id")) {
    name = "by_product";
  }
  for (const auto& shape : expected_shapes()) {
    if (shape.name == name) {
      return &shape;
    }
  }
  return nullptr;
}

// PQexecPrepared with text parameters; only the status and the error are kept.
PgResult exec_prepared(PGconn* c, const std::string& name, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  PGresult* raw = PQexecPrepared(c, name.c_str(), static_cast<int>(values.size()), values.data(),
                                 nullptr, nullptr, 0);
  PgResult out;
  out.status = PQresultStatus(raw);
  out.error = raw != nullptr ? PQresultErrorMessage(raw) : PQerrorMessage(c);
  PQclear(raw);
  return out;
}

// Runs every shape kCallsPerShape times through `c`: first the ones that must get no advice (so
// the advisor has seen them by the time the last positive record appears), then the four that
// lack an index: simple protocol with literals, extended protocol unnamed, extended protocol
// with a named statement, and a sort for a LIMIT.
::testing::AssertionResult run_workload(PGconn* c) {
  PGresult* prepared =
      PQprepare(c, "by_product", "SELECT * FROM orders WHERE product_id = $1", 1, nullptr);
  const bool prepared_ok = PQresultStatus(prepared) == PGRES_COMMAND_OK;
  const std::string prepare_error = PQresultErrorMessage(prepared);
  PQclear(prepared);
  if (!prepared_ok) {
    return ::testing::AssertionFailure() << "PQprepare by_product: " << prepare_error;
  }
  const std::vector<std::pair<std::string, std::function<PgResult(int)>>> steps = {
      {"customers by email (indexed)",
       [&](int i) {
         return exec(c, "SELECT * FROM customers WHERE email = 'user" + std::to_string(4242 + i) +
                            "@example.com'");
       }},
      {"tiny table",
       [&](int i) {
         return exec(c, "SELECT * FROM tiny WHERE name = '" + std::string(1, 'a' + i) + "'");
       }},
      {"low cardinality",
       [&](int i) {
         return exec(c, std::string("SELECT count(*) FROM orders WHERE status = '") +
                            (i % 2 == 0 ? "open" : "paid") + "'");
       }},
      {"whole-table aggregate", [&](int) { return exec(c, "SELECT count(*) FROM orders"); }},
      {"by_customer (simple)",
       [&](int i) {
         return exec(c, "SELECT * FROM orders WHERE customer_id = " + std::to_string(4201 + i));
       }},
      {"by_customer_since (extended, unnamed)",
       [&](int i) {
         return exec_params(c, "SELECT id FROM orders WHERE customer_id = $1 AND created_at >= $2",
                            {std::to_string(7301 + i), "2024-10-01 00:00:00+00"});
       }},
      {"by_product (extended, named)",
       [&](int i) { return exec_prepared(c, "by_product", {std::to_string(1701 + i)}); }},
      {"latest (sort)",
       [&](int) { return exec(c, "SELECT * FROM orders ORDER BY created_at DESC LIMIT 10"); }},
  };
  for (const auto& [name, step] : steps) {
    for (int i = 0; i < kCallsPerShape; ++i) {
      const PgResult r = step(i);
      if (!r.ok()) {
        return ::testing::AssertionFailure() << name << " call " << i << ": " << r;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- Admin console, HTTP, log --------------------------------------------------------------

// The sum of every series of metric `name` (with or without labels); nullopt if there is none.
std::optional<double> metric_sum(const std::string& text, const std::string& name) {
  std::optional<double> sum;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (line.rfind(name, 0) != 0 || (next != ' ' && next != '{')) {
      continue;  // another metric, a comment, or a longer name with the same prefix
    }
    sum = sum.value_or(0) + std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// The cell of `row` in the column called `name`; "" if there is no such column.
std::string cell(const PgResult& r, const std::vector<std::string>& row, const std::string& name) {
  const auto it = std::find(r.columns.begin(), r.columns.end(), name);
  return it == r.columns.end() ? "" : row.at(static_cast<std::size_t>(it - r.columns.begin()));
}

bool has_column(const PgResult& r, const std::string& name) {
  return std::find(r.columns.begin(), r.columns.end(), name) != r.columns.end();
}

// Log lines that contain every one of `parts` (case-insensitive).
std::vector<std::string> log_lines_with(const std::string& log,
                                        const std::vector<std::string>& parts) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    const std::string l = lower(line);
    if (std::all_of(parts.begin(), parts.end(),
                    [&](const std::string& p) { return contains(l, lower(p)); })) {
      out.push_back(line);
    }
  }
  return out;
}

// Lines about the advisor failing to connect or to run (not, say, a start-up notice).
std::vector<std::string> advisor_failure_lines(const std::string& log) {
  std::vector<std::string> out;
  for (const auto& line : log_lines_with(log, {"index advisor"})) {
    const std::string l = lower(line);
    for (const char* word : {"fail", "error", "password", "refused", "cannot", "could not",
                             "unavailable", "unreachable", "down", "lost"}) {
      if (contains(l, word)) {
        out.push_back(line);
        break;
      }
    }
  }
  return out;
}

// ---- The fixture ---------------------------------------------------------------------------

// Thresholds for the sizes below: orders and customers have 60k rows in several hundred pages
// (checked in SetUpTestSuite), tiny has 10 rows in one page.
constexpr int kMinTablePages = 100;
constexpr int kMinTableRows = 5000;
constexpr double kOrdersRows = 60000;

// customer_id: 20k values, 3 rows each (no index); product_id: 2000 values, 30 rows each (no
// index); status: 3 values, a third of the rows each; created_at: 8 minutes apart over 2024;
// customers.email: indexed.
constexpr const char* kSchema =
    "SET client_min_messages = warning;"
    "DROP SCHEMA IF EXISTS shop CASCADE;"
    "DROP TABLE IF EXISTS orders, customers, tiny;"
    "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL,"
    "  product_id int NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL, note text);"
    "INSERT INTO orders (customer_id, product_id, created_at, status, note)"
    "  SELECT (g * 7919) % 20000 + 1, (g::bigint * 104729 % 2000)::int + 1,"
    "    timestamptz '2024-01-01 00:00:00+00' + g * interval '8 minutes',"
    "    (ARRAY['open', 'paid', 'shipped'])[g % 3 + 1], 'note ' || md5(g::text)"
    "  FROM generate_series(1, 60000) g;"
    "CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL, name text);"
    "INSERT INTO customers (email, name)"
    "  SELECT 'user' || g || '@example.com', 'customer ' || g FROM generate_series(1, 60000) g;"
    "CREATE INDEX customers_email_idx ON customers (email);"
    "CREATE TABLE tiny (id int, name text);"
    "INSERT INTO tiny SELECT g, chr(96 + g) FROM generate_series(1, 10) g;"
    "GRANT SELECT ON orders, customers, tiny TO app, other;"
    "GRANT DELETE ON orders TO app;"  // for a DELETE that is rolled back
    "ANALYZE orders; ANALYZE customers; ANALYZE tiny;";

// Database app only: 300k rows in ~3700 pages, large enough for parallel plans (Gather over a
// Parallel Seq Scan) and for the default thresholds (1000 pages, 10000 rows).
constexpr const char* kBigSchema =
    "DROP TABLE IF EXISTS big_orders;"
    "CREATE TABLE big_orders (LIKE orders);"
    "INSERT INTO big_orders (id, customer_id, product_id, created_at, status, note)"
    "  SELECT g, (g::bigint * 7919 % 100000)::int + 1, (g::bigint * 104729 % 2000)::int + 1,"
    "    timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',"
    "    (ARRAY['open', 'paid', 'shipped'])[g % 3 + 1], 'note ' || md5(g::text)"
    "  FROM generate_series(1, 300000) g;"
    "GRANT SELECT ON big_orders TO app; ANALYZE big_orders;";

class IndexAdviceTest : public ::testing::Test {
 protected:
  // One schema for the whole binary, in both databases: app with hypopg, other without.
  static void SetUpTestSuite() {
    if (pg().primary_port() == 0) {
      return;  // no PostgreSQL: the environment skips every test
    }
    for (const std::string db : {"app", "other"}) {
      auto su = connect(pg().superuser_conninfo(Node::Primary, db));
      ASSERT_TRUE(su) << su.error;
      const std::string hypopg = db == "app" ? "CREATE EXTENSION IF NOT EXISTS hypopg;"
                                             : "DROP EXTENSION IF EXISTS hypopg;";
      // A second orders table in schema shop (database app), found through search_path, with
      // an index on customer_id: that index must not count for public.orders.
      const std::string shop = db == "app"
                                   ? "CREATE SCHEMA IF NOT EXISTS shop;"
                                     "CREATE TABLE shop.orders AS SELECT * FROM public.orders;"
                                     "CREATE INDEX ON shop.orders (customer_id);"
                                     "GRANT USAGE ON SCHEMA shop TO app;"
                                     "GRANT SELECT ON shop.orders TO app; ANALYZE shop.orders;"
                                   : "";
      const PgResult r = exec(su.conn, kSchema + hypopg + shop + (db == "app" ? kBigSchema : ""));
      ASSERT_TRUE(r.ok()) << db << ": " << r;
      const auto pages =
          query_value(su.conn, "SELECT relpages FROM pg_class WHERE relname = 'orders'");
      ASSERT_TRUE(pages);
      orders_pages_[db] = std::stod(*pages);
      // Well above min_table_pages, and below min_parallel_table_scan_size (1024 pages), so
      // that the plans are a plain Seq Scan.
      EXPECT_GT(orders_pages_[db], 3 * kMinTablePages) << db;
      EXPECT_LT(orders_pages_[db], 1024) << db;
    }
  }

  void SetUp() override {
    if (!PgmuxProcess::binary_exists()) {
      GTEST_SKIP() << "pgmux not built: " << PgmuxProcess::binary_path();
    }
    char dir[] = "/tmp/pgmux-advice-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    advice_path_ = dir_ + "/advice.jsonl";
  }

  // Every test ends with a clean exit: status 0 and no sanitizer report.
  void TearDown() override {
    if (pgmux_.pid() > 0) {
      EXPECT_EQ(pgmux_.stop(), 0) << pgmux_.log_tail();
      EXPECT_FALSE(contains(pgmux_.log_text(), "Sanitizer")) << pgmux_.log_tail(80);
      EXPECT_FALSE(contains(pgmux_.log_text(), "runtime error")) << pgmux_.log_tail(80);
    }
    if (!dir_.empty() && !HasFailure() && std::getenv("PGMUX_KEEP_LOGS") == nullptr) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  // pgmux with the admin console, /metrics, and [index_advice] with the thresholds above plus
  // `advice_extra` (user, password, target).
  ::testing::AssertionResult start(const std::string& advice_extra, int workers = 1,
                                   const std::string& database_extra = "",
                                   int recheck_interval = 2) {
    http_port_ = PgmuxProcess::free_port();
    PgmuxConfigOptions o;
    o.replica = false;
    o.workers = workers;
    o.log_level = "info";
    o.pgmux_extra =
        "admin_users = [\"app\"]\nhttp_listen = \"127.0.0.1:" + std::to_string(http_port_) +
        "\"\nquery_stats = true\nmax_query_shapes = 5000";
    o.database_extra = database_extra;
    std::ostringstream advice;
    advice << "[index_advice]\n"
           << "enabled = true\n"
           << "file = \"" << advice_path_ << "\"\n"
           << "min_calls = " << kMinCalls << "\n"
           << "min_duration = 10\n"  // here only min_calls makes a sample
           << "recheck_interval = " << recheck_interval << "\n"
           << "explain_rate = 20\n"
           << "min_table_pages = " << kMinTablePages << "\n"
           << "min_table_rows = " << kMinTableRows << "\n"
           << "max_selectivity = 0.05\n"
           << "statement_timeout = 2\n"
           << "sample_queue = 256\n"
           << advice_extra;
    o.extra = advice.str();
    return pgmux_.start(PgmuxProcess::typical_config(o));
  }

  // pgmux with the admin console and `advice_section` as the whole [index_advice] table.
  ::testing::AssertionResult start_with(const std::string& advice_section) {
    PgmuxConfigOptions o;
    o.replica = false;
    o.log_level = "info";
    o.pgmux_extra = "admin_users = [\"app\"]";
    o.extra = advice_section;
    return pgmux_.start(PgmuxProcess::typical_config(o));
  }

  PgConn client(const std::string& db) {
    auto c = connect(pgmux_.conninfo("app", "secret", db));
    EXPECT_TRUE(c) << c.error << "\n" << pgmux_.log_tail();
    return std::move(c.conn);
  }

  // Waits until the file holds `count` records (or more), then 2 s longer, so that a late
  // record (a negative judged last, a second record for a shape) shows too.
  AdviceFile wait_for_records(std::size_t count, std::chrono::milliseconds timeout = 30s) {
    wait_for([&] { return read_advice(advice_path_).records.size() >= count; }, timeout, kPoll);
    std::this_thread::sleep_for(2s);
    return read_advice(advice_path_);
  }

  static inline std::map<std::string, double> orders_pages_;  // relpages by database
  PgmuxProcess pgmux_;
  int http_port_ = 0;
  std::string dir_;
  std::string advice_path_;
};

constexpr const char* kAdvisorApp = "user = \"app\"\npassword = \"secret\"\n";

// Checks one record against the shape it is for.
void expect_record(const Json& rec, const ExpectedShape& shape, const std::string& db,
                   const std::string& judged_by, double pages) {
  SCOPED_TRACE(db + " " + shape.name);
  const std::string query = rec.str("query");
  EXPECT_EQ(rec.str("database"), db);
  EXPECT_EQ(rec.str("table"), "public.orders");
  EXPECT_EQ(rec.strings("columns"), shape.columns);
  EXPECT_EQ(rec.str("reason"), shape.reason);
  EXPECT_EQ(rec.str("judged_by"), judged_by);
  EXPECT_TRUE(std::regex_match(rec.str("fingerprint"), std::regex("[0-9a-fA-F]+")))
      << rec.str("fingerprint");

  // Normalized text: placeholders, never the values sent.
  EXPECT_TRUE(contains(query, "$1")) << query;
  for (const auto& literal : shape.literals) {
    EXPECT_FALSE(contains(query, literal)) << "the value " << literal << " leaked: " << query;
  }

  // CREATE INDEX CONCURRENTLY ON public.orders (c1, c2); an index for a sort may say DESC.
  std::string cols;
  for (const auto& c : shape.columns) {
    cols += (cols.empty() ? "" : ",") + c;
  }
  const std::string ddl = without_spaces(rec.str("ddl"));
  const std::string want = "CREATEINDEXCONCURRENTLYONpublic.orders(" + cols + ")";
  if (shape.reason == "sort") {
    EXPECT_TRUE(ddl == want || ddl == "CREATEINDEXCONCURRENTLYONpublic.orders(" + cols + "DESC)")
        << rec.str("ddl");
  } else {
    EXPECT_EQ(ddl, want) << rec.str("ddl");
    EXPECT_EQ(rec.str("plan_node"), "Seq Scan");
    EXPECT_LE(rec.num("plan_rows"), 0.05 * kOrdersRows);
  }

  // The evidence: a large table, few rows kept, the cost at least halved.
  EXPECT_FALSE(rec.str("plan_node").empty());
  EXPECT_TRUE(rec.has_number("plan_rows"));
  EXPECT_NEAR(rec.num("table_rows"), kOrdersRows, kOrdersRows * 0.1);
  EXPECT_NEAR(rec.num("table_pages"), pages, pages * 0.1 + 1);
  EXPECT_GT(rec.num("cost_before"), 0);
  if (judged_by == "hypopg" || rec.get("cost_after") != nullptr) {
    EXPECT_TRUE(rec.has_number("cost_after"));
    EXPECT_LE(rec.num("cost_after"), rec.num("cost_before") / 2);
  }

  // Statistics as pgmux saw them when the record was made.
  EXPECT_GE(rec.num("calls"), kMinCalls);
  EXPECT_LE(rec.num("calls"), kCallsPerShape);
  EXPECT_GT(rec.num("total_time_ms"), 0);
  EXPECT_GT(rec.num("mean_time_ms"), 0);
  EXPECT_GE(rec.num("total_time_ms") + 1e-6, rec.num("mean_time_ms"));
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00))");
  EXPECT_TRUE(std::regex_match(rec.str("first_seen"), iso)) << rec.str("first_seen");
  EXPECT_TRUE(std::regex_match(rec.str("last_seen"), iso)) << rec.str("last_seen");
  EXPECT_LE(rec.str("first_seen"), rec.str("last_seen"));
}

// The shapes that lack an index get exactly one record each, in both databases, judged with
// hypopg where it is installed and by pgmux's estimate where it is not; the others get none; no
// value a client sent reaches the file; each new record is logged once at info level.
TEST_F(IndexAdviceTest, RecordsExactlyTheShapesThatLackAnIndex) {
  ASSERT_TRUE(start(kAdvisorApp));
  const auto started = Clock::now();
  for (const char* db : {"app", "other"}) {
    auto c = client(db);
    ASSERT_TRUE(c);
    ASSERT_TRUE(run_workload(c.get())) << db;
  }
  const std::size_t expected = 2 * expected_shapes().size();
  const AdviceFile file = wait_for_records(expected);
  EXPECT_LT(Clock::now() - started, 35s) << "advice must appear within a bounded time";
  ASSERT_TRUE(file.bad_lines.empty()) << "not a JSON object:\n" << file.bad_lines.front();
  ASSERT_EQ(file.records.size(), expected) << describe(file) << "\n" << pgmux_.log_tail();

  std::map<std::string, std::set<std::string>> seen;  // database -> shapes with a record
  for (const auto& [key, rec] : file.records) {
    const std::string& db = key.first;
    const ExpectedShape* shape = shape_of(rec.str("query"));
    ASSERT_NE(shape, nullptr) << "a record for a shape that needs no index: " << rec.str("query")
                              << "\n"
                              << describe(file);
    EXPECT_TRUE(seen[db].insert(shape->name).second) << "two records: " << db << " " << shape->name;
    expect_record(rec, *shape, db, db == "app" ? "hypopg" : "estimate", orders_pages_[db]);
  }
  EXPECT_EQ(seen["app"].size(), expected_shapes().size()) << describe(file);
  EXPECT_EQ(seen["other"].size(), expected_shapes().size()) << describe(file);

  // No text a client sent as a value is on any line (numbers are checked in each record's
  // query above: on a whole line they could match a cost or a time by chance).
  for (const char* value : {"2024-10-01", "user4242", "'open'", "'paid'"}) {
    EXPECT_FALSE(contains(file.text, value)) << value << " in\n" << file.text;
  }

  const std::string log = pgmux_.log_text();
  for (const char* value : {"2024-10-01", "user4242", "'open'", "'paid'", "= 4201", "= 1701"}) {
    EXPECT_FALSE(contains(log, value)) << value << " in the log\n" << pgmux_.log_tail(60);
  }
  const auto logged = log_lines_with(log, {"index advice", "orders"});
  EXPECT_EQ(logged.size(), expected) << "one log line per new record\n" << pgmux_.log_tail(60);
  EXPECT_EQ(log_lines_with(log, {" info ", "index advice", "orders"}).size(), logged.size());
}

// SHOW INDEX_ADVICE shows the records; SHOW QUERIES has every shape with its statistics; the
// /metrics gauge counts the records.
TEST_F(IndexAdviceTest, AdminConsoleAndMetricsShowTheRecords) {
  ASSERT_TRUE(start(kAdvisorApp));
  {
    auto c = client("app");
    ASSERT_TRUE(c);
    ASSERT_TRUE(run_workload(c.get()));
    for (int i = 0; i < 3; ++i) {
      EXPECT_FALSE(
          exec(c, "SELECT * FROM orders WHERE no_such_column = " + std::to_string(i)).ok());
    }
  }
  const AdviceFile file = wait_for_records(expected_shapes().size());
  ASSERT_EQ(file.records.size(), expected_shapes().size()) << describe(file);

  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult advice = exec(admin, "SHOW INDEX_ADVICE");
  ASSERT_TRUE(advice.ok()) << advice;
  for (const char* name : {"database", "table", "columns", "ddl", "calls", "judged_by", "query"}) {
    EXPECT_TRUE(has_column(advice, name)) << "SHOW INDEX_ADVICE has no column " << name;
  }
  EXPECT_EQ(advice.rows.size(), file.records.size()) << advice;
  for (const auto& [key, rec] : file.records) {
    SCOPED_TRACE(rec.str("query"));
    int matches = 0;
    for (const auto& row : advice.rows) {
      if (cell(advice, row, "database") != key.first ||
          cell(advice, row, "query") != rec.str("query")) {
        continue;
      }
      ++matches;
      EXPECT_EQ(cell(advice, row, "table"), "public.orders");
      EXPECT_EQ(cell(advice, row, "ddl"), rec.str("ddl"));
      EXPECT_EQ(cell(advice, row, "judged_by"), "hypopg");
      EXPECT_GE(std::atoi(cell(advice, row, "calls").c_str()), kMinCalls);
      // The key columns in the record's order, whatever the separator.
      const std::string cols = cell(advice, row, "columns");
      std::size_t at = 0;
      for (const auto& c : rec.strings("columns")) {
        at = cols.find(c, at);
        ASSERT_NE(at, std::string::npos) << c << " missing or out of order in " << cols;
      }
    }
    EXPECT_EQ(matches, 1) << advice;
  }

  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  for (const char* name : {"database", "query", "calls", "total_time_ms", "mean_time_ms",
                           "max_time_ms", "rows", "errors", "primary", "replica"}) {
    EXPECT_TRUE(has_column(queries, name)) << "SHOW QUERIES has no column " << name;
  }
  // The one row of database app whose query matches `pick`.
  auto row_of = [&](const std::string& what, const std::function<bool(const std::string&)>& pick) {
    std::vector<std::vector<std::string>> found;
    for (const auto& row : queries.rows) {
      if (cell(queries, row, "database") == "app" && pick(cell(queries, row, "query"))) {
        found.push_back(row);
      }
    }
    EXPECT_EQ(found.size(), 1u) << "rows for " << what << ":\n" << queries;
    return found.empty() ? std::vector<std::string>(queries.columns.size()) : found.front();
  };
  const std::string all = std::to_string(kCallsPerShape);
  for (const auto& [key, rec] : file.records) {
    const std::string q = rec.str("query");
    const auto row = row_of(q, [&](const std::string& text) { return text == q; });
    EXPECT_EQ(cell(queries, row, "calls"), all) << q;
    EXPECT_EQ(cell(queries, row, "primary"), all) << q;
    EXPECT_EQ(cell(queries, row, "replica"), "0") << q;
    EXPECT_EQ(cell(queries, row, "errors"), "0") << q;
  }
  for (const std::string table : {"customers", "tiny", "status"}) {
    const auto row = row_of(table, [&](const std::string& text) { return contains(text, table); });
    EXPECT_EQ(cell(queries, row, "calls"), all) << table;
    EXPECT_TRUE(contains(cell(queries, row, "query"), "$1")) << cell(queries, row, "query");
  }
  const auto count = row_of("count(*)", [](const std::string& text) {
    return without_spaces(lower(text)) == "selectcount(*)fromorders";
  });
  EXPECT_EQ(cell(queries, count, "calls"), all);
  EXPECT_EQ(cell(queries, count, "rows"), all);  // one row per call
  const double mean = std::atof(cell(queries, count, "mean_time_ms").c_str());
  const double max = std::atof(cell(queries, count, "max_time_ms").c_str());
  const double total = std::atof(cell(queries, count, "total_time_ms").c_str());
  EXPECT_GT(mean, 0);
  EXPECT_LE(mean, max + 1e-6);
  EXPECT_NEAR(total, mean * kCallsPerShape, total * 0.01 + 0.01);
  const auto failing =
      row_of("no_such_column", [](const std::string& text) { return contains(text, "no_such"); });
  EXPECT_EQ(cell(queries, failing, "errors"), "3");
  for (const auto& row : queries.rows) {  // no value a client sent
    const std::string q = cell(queries, row, "query");
    for (const char* value : {"4201", "7301", "1701", "user4242", "'open'", "'a'"}) {
      EXPECT_FALSE(contains(q, value)) << q;
    }
  }

  const std::string metrics = http_get(http_port_, "/metrics").body;
  EXPECT_TRUE(contains(metrics, "# TYPE pgmux_index_advice_records gauge")) << metrics;
  EXPECT_EQ(metric_sum(metrics, "pgmux_index_advice_records").value_or(-1),
            static_cast<double>(file.records.size()))
      << metrics;
}

// A shape that ran min_calls times in total is judged, whichever workers ran it, and SHOW
// QUERIES sums it over the workers.
TEST_F(IndexAdviceTest, CallsSpreadOverWorkersCountTogether) {
  ASSERT_TRUE(start(kAdvisorApp, /*workers=*/2));
  std::vector<PgConn> clients;  // all connected first, so that they spread over both workers
  for (int i = 0; i < kMinCalls; ++i) {
    clients.push_back(client("app"));
    ASSERT_TRUE(clients.back());
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string sql = "SELECT * FROM orders WHERE customer_id = " + std::to_string(4201 + i);
    ASSERT_TRUE(exec(clients[i], sql).ok());
  }

  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  int rows = 0;
  for (const auto& row : queries.rows) {
    if (contains(cell(queries, row, "query"), "customer_id")) {
      ++rows;
      EXPECT_EQ(cell(queries, row, "calls"), std::to_string(kMinCalls)) << queries;
    }
  }
  EXPECT_EQ(rows, 1) << "one row per shape, summed over the workers\n" << queries;

  AdviceFile file;
  EXPECT_TRUE(
      wait_for([&] { return !(file = read_advice(advice_path_)).records.empty(); }, 30s, kPoll))
      << "a shape that ran min_calls = " << kMinCalls << " times was never judged\n"
      << pgmux_.log_tail();
  ASSERT_EQ(file.records.size(), 1u) << describe(file);
  EXPECT_EQ(file.records.begin()->second.strings("columns"),
            std::vector<std::string>{"customer_id"});
}

// A record that changes is appended again: the latest line wins, with the calls so far and a
// later last_seen; first_seen stays, and only the new record was logged.
TEST_F(IndexAdviceTest, ChangedRecordIsAppendedAgain) {
  ASSERT_TRUE(start(kAdvisorApp));
  auto c = client("app");
  ASSERT_TRUE(c);
  auto run = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string sql =
          "SELECT * FROM orders WHERE customer_id = " + std::to_string(4201 + i);
      ASSERT_TRUE(exec(c, sql).ok());
    }
  };
  run(0, kMinCalls);
  AdviceFile file;
  ASSERT_TRUE(
      wait_for([&] { return (file = read_advice(advice_path_)).line_count >= 1; }, 30s, kPoll))
      << pgmux_.log_tail();
  ASSERT_EQ(file.records.size(), 1u) << describe(file);
  const Json first = file.records.begin()->second;
  std::this_thread::sleep_for(2500ms);  // past recheck_interval (2 s)
  run(kMinCalls, 4 * kMinCalls);
  EXPECT_TRUE(wait_for(
      [&] {
        file = read_advice(advice_path_);
        return file.line_count >= 2 && file.records.size() == 1 &&
               file.records.begin()->second.num("calls") > first.num("calls");
      },
      30s, kPoll))
      << "the record was not appended again with its new calls\n"
      << describe(file);
  ASSERT_EQ(file.records.size(), 1u) << describe(file);
  const Json& latest = file.records.begin()->second;
  EXPECT_EQ(latest.str("first_seen"), first.str("first_seen"));
  EXPECT_GT(latest.str("last_seen"), first.str("last_seen"));
  EXPECT_LE(latest.num("calls"), 4 * kMinCalls);
  EXPECT_EQ(latest.strings("columns"), first.strings("columns"));
  EXPECT_EQ(log_lines_with(pgmux_.log_text(), {"index advice", "orders"}).size(), 1u)
      << "a log line per new record, not per change\n"
      << pgmux_.log_tail();
}

// The EXPLAIN runs with the client's privileges (SET ROLE), not the advisor's: a superuser
// advisor gives no advice on a query its client may not even run.
TEST_F(IndexAdviceTest, ExplainRunsAsTheClientsRole) {
  {
    auto super = connect(PostgresEnvironment::instance().superuser_conninfo(Node::Primary, "app"));
    ASSERT_TRUE(super) << super.error;
    ASSERT_TRUE(exec(super.conn,
                     "DROP TABLE IF EXISTS private_orders; "
                     "CREATE TABLE private_orders AS SELECT * FROM orders; ANALYZE private_orders; "
                     "REVOKE ALL ON private_orders FROM PUBLIC; "
                     "GRANT SELECT ON private_orders TO app")
                    .ok());
  }
  ASSERT_TRUE(start("user = \"postgres\"\npassword = \"postgres\"\n"));
  auto owner = client("app");
  auto stranger = connect(pgmux_.conninfo("other", "other_secret", "app"));
  ASSERT_TRUE(owner && stranger) << stranger.error;
  for (int i = 0; i < kCallsPerShape; ++i) {
    ASSERT_TRUE(
        exec(owner, "SELECT note FROM private_orders WHERE customer_id = " + std::to_string(77 + i)).ok());
    const auto refused = exec(stranger.conn, "SELECT status FROM private_orders WHERE product_id = " +
                                                 std::to_string(55 + i));
    ASSERT_EQ(refused.sqlstate, "42501") << "other may not read orders: " << refused;
  }
  const AdviceFile file = wait_for_records(1);
  ASSERT_EQ(file.records.size(), 1u) << describe(file) << "\n" << pgmux_.log_tail();
  EXPECT_EQ(file.records.begin()->second.strings("columns"), std::vector<std::string>{"customer_id"});
  EXPECT_EQ(file.records.begin()->second.str("table"), "public.private_orders");
}

// The shape is judged with the client's search_path: orders is shop.orders for this client,
// which lacks an index on product_id but has one on customer_id.
TEST_F(IndexAdviceTest, ClientSearchPathIsUsed) {
  ASSERT_TRUE(start(kAdvisorApp));
  auto c = client("app");
  ASSERT_TRUE(c);
  ASSERT_TRUE(exec(c, "SET search_path = shop, public").ok());
  for (int i = 0; i < kCallsPerShape; ++i) {
    const std::string by_customer =
        "SELECT * FROM orders WHERE customer_id = " + std::to_string(4201 + i);
    ASSERT_TRUE(exec(c, by_customer).ok());
  }
  for (int i = 0; i < kCallsPerShape; ++i) {
    const std::string by_product =
        "SELECT * FROM orders WHERE product_id = " + std::to_string(1701 + i);
    ASSERT_TRUE(exec(c, by_product).ok());
  }
  const AdviceFile file = wait_for_records(1);
  ASSERT_EQ(file.records.size(), 1u) << describe(file) << "\n" << pgmux_.log_tail();
  const Json& rec = file.records.begin()->second;
  EXPECT_EQ(rec.str("table"), "shop.orders");
  EXPECT_EQ(without_spaces(rec.str("ddl")), "CREATEINDEXCONCURRENTLYONshop.orders(product_id)")
      << rec.str("ddl");
  EXPECT_EQ(rec.strings("columns"), std::vector<std::string>{"product_id"});
}

// Bind parameters in binary format (with and without a type in the Parse), and a DELETE by a
// column without an index (rolled back), get advice like the others.
TEST_F(IndexAdviceTest, BinaryParametersAndWrites) {
  ASSERT_TRUE(start(kAdvisorApp));
  auto c = client("app");
  ASSERT_TRUE(c);
  const Oid int4[] = {23};
  for (const bool typed : {true, false}) {
    const std::string sql = typed ? "SELECT * FROM orders WHERE product_id = $1"
                                  : "SELECT id, note FROM orders WHERE product_id = $1";
    for (int i = 0; i < kCallsPerShape; ++i) {
      const std::uint32_t value = htonl(static_cast<std::uint32_t>(1701 + i));
      const char* values[] = {reinterpret_cast<const char*>(&value)};
      const int lengths[] = {4};
      const int formats[] = {1};
      PGresult* r = PQexecParams(c.get(), sql.c_str(), 1, typed ? int4 : nullptr, values, lengths,
                                 formats, 0);
      EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
      EXPECT_EQ(PQntuples(r), 30) << sql;
      PQclear(r);
    }
  }
  for (int i = 0; i < kCallsPerShape; ++i) {
    ASSERT_TRUE(exec(c, "BEGIN").ok());
    const PgResult deleted =
        exec(c, "DELETE FROM orders WHERE customer_id = " + std::to_string(4201 + i));
    EXPECT_EQ(deleted.command_tuples, "3") << deleted;
    ASSERT_TRUE(exec(c, "ROLLBACK").ok());
  }
  const AdviceFile file = wait_for_records(3);
  ASSERT_EQ(file.records.size(), 3u) << describe(file) << "\n" << pgmux_.log_tail();
  std::map<std::string, std::vector<std::string>> columns_by_query;
  for (const auto& [key, rec] : file.records) {
    EXPECT_EQ(rec.str("table"), "public.orders") << rec.str("query");
    columns_by_query[rec.str("query")] = rec.strings("columns");
  }
  const std::vector<std::string> product{"product_id"};
  const std::vector<std::string> customer{"customer_id"};
  EXPECT_EQ(columns_by_query["SELECT * FROM orders WHERE product_id = $1"], product);
  EXPECT_EQ(columns_by_query["SELECT id, note FROM orders WHERE product_id = $1"], product);
  EXPECT_EQ(columns_by_query["DELETE FROM orders WHERE customer_id = $1"], customer)
      << describe(file);
}

// With the default thresholds (min_calls 20, 1000 pages, 10000 rows), a shape that has run 20
// times on a large table is judged well within 60 s, also when its plan is a Gather over a
// Parallel Seq Scan; a parallel aggregate over a third of the rows gets no advice.
TEST_F(IndexAdviceTest, DefaultThresholdsAndParallelPlans) {
  ASSERT_TRUE(start_with(std::string("[index_advice]\nenabled = true\nfile = \"") + advice_path_ +
                         "\"\n" + kAdvisorApp));
  {
    auto su = connect(pg().superuser_conninfo(Node::Primary, "app"));
    ASSERT_TRUE(su) << su.error;
    const PgResult plan = exec(su.conn, "EXPLAIN SELECT * FROM big_orders WHERE customer_id = 42");
    std::string text;
    for (const auto& row : plan.rows) {
      text += row.at(0) + "\n";
    }
    EXPECT_TRUE(contains(text, "Parallel Seq Scan")) << "not the plan this test is about:\n"
                                                     << text;
  }
  auto c = client("app");
  ASSERT_TRUE(c);
  const auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    const std::string by_customer =
        "SELECT * FROM big_orders WHERE customer_id = " + std::to_string(4201 + i);
    ASSERT_TRUE(exec(c, by_customer).ok());
    const std::string by_status = std::string("SELECT count(*) FROM big_orders WHERE status = '") +
                                  (i % 2 == 0 ? "open" : "paid") + "'";
    ASSERT_TRUE(exec(c, by_status).ok());
  }
  AdviceFile file;
  EXPECT_TRUE(
      wait_for([&] { return !(file = read_advice(advice_path_)).records.empty(); }, 60s, kPoll))
      << pgmux_.log_tail();
  EXPECT_LT(Clock::now() - started, 60s);
  std::this_thread::sleep_for(2s);
  file = read_advice(advice_path_);
  ASSERT_EQ(file.records.size(), 1u) << describe(file) << "\n" << pgmux_.log_tail();
  const Json& rec = file.records.begin()->second;
  EXPECT_EQ(rec.str("table"), "public.big_orders");
  EXPECT_EQ(rec.strings("columns"), std::vector<std::string>{"customer_id"});
  EXPECT_EQ(without_spaces(rec.str("ddl")),
            "CREATEINDEXCONCURRENTLYONpublic.big_orders(customer_id)");
  EXPECT_EQ(rec.str("judged_by"), "hypopg");
  EXPECT_GE(rec.num("calls"), 20);
  EXPECT_GT(rec.num("table_pages"), 1000);
}

// Spellings of one query (case, spaces, literals) are one shape: one record, one SHOW QUERIES
// row with every call. (libpg_query tells "orders" and "public.orders" apart, so both are
// written "orders" here.)
TEST_F(IndexAdviceTest, SpellingsOfOneQueryAreOneShape) {
  ASSERT_TRUE(start(kAdvisorApp));
  auto c = client("app");
  ASSERT_TRUE(c);
  const std::vector<std::string> spellings = {
      "SELECT * FROM orders WHERE customer_id = ", "select * from orders where customer_id=",
      "SELECT *\n  FROM orders\n WHERE customer_id =  ",
      "Select * From orders Where customer_id = "};
  for (int i = 0; i < kCallsPerShape; ++i) {
    const std::string sql = spellings[i % spellings.size()] + std::to_string(4201 + i);
    ASSERT_TRUE(exec(c, sql).ok()) << sql;
  }
  const AdviceFile file = wait_for_records(1);
  ASSERT_EQ(file.records.size(), 1u) << describe(file);
  EXPECT_EQ(file.records.begin()->second.strings("columns"),
            std::vector<std::string>{"customer_id"});
  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  long calls = 0;
  int rows = 0;
  for (const auto& row : queries.rows) {
    if (contains(lower(cell(queries, row, "query")), "customer_id")) {
      ++rows;
      calls += std::atol(cell(queries, row, "calls").c_str());
    }
  }
  EXPECT_EQ(rows, 1) << queries;
  EXPECT_EQ(calls, kCallsPerShape) << queries;
}

// Without [index_advice] (enabled defaults to false) there is no advisor and no record, while
// SHOW QUERIES still has the statistics.
TEST_F(IndexAdviceTest, DisabledByDefault) {
  const int http_port = PgmuxProcess::free_port();
  PgmuxConfigOptions o;
  o.replica = false;
  o.log_level = "info";
  o.pgmux_extra =
      "admin_users = [\"app\"]\nhttp_listen = \"127.0.0.1:" + std::to_string(http_port) + "\"";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(o)));
  auto c = client("app");
  ASSERT_TRUE(c);
  ASSERT_TRUE(run_workload(c.get()));
  std::this_thread::sleep_for(2s);
  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult advice = exec(admin, "SHOW INDEX_ADVICE");
  ASSERT_TRUE(advice.ok()) << advice;
  EXPECT_TRUE(advice.rows.empty()) << advice;
  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  EXPECT_GE(queries.rows.size(), 8u) << queries;
  const std::string metrics = http_get(http_port, "/metrics").body;
  EXPECT_EQ(metric_sum(metrics, "pgmux_index_advice_records").value_or(0), 0) << metrics;
  EXPECT_TRUE(log_lines_with(pgmux_.log_text(), {"index advice"}).empty()) << pgmux_.log_tail();
  EXPECT_TRUE(advisor_failure_lines(pgmux_.log_text()).empty()) << pgmux_.log_tail();
}

// target = "replica": the advisor EXPLAINs on the streaming replica (hypopg works there too);
// SHOW QUERIES counts the calls that the routing sent to the replica.
TEST_F(IndexAdviceTest, TargetReplica) {
  ASSERT_TRUE(pg().has_replica());
  ASSERT_TRUE(pg().wait_replica_caught_up());
  ASSERT_TRUE(start(std::string("target = \"replica\"\n") + kAdvisorApp, 1,
                    "replicas = [\"127.0.0.1:@REPLICA_PORT@\"]\nhealth_check_period = 0.1"));
  auto c = client("app");
  ASSERT_TRUE(c);
  // Reads leave the primary once a health round has seen the replica.
  ASSERT_TRUE(wait_for(
      [&] {
        return query_value(c, "SELECT inet_server_port()") == std::to_string(pg().replica_port());
      },
      10s, kPoll))
      << pgmux_.log_tail();
  ASSERT_TRUE(run_workload(c.get()));
  const AdviceFile file = wait_for_records(expected_shapes().size());
  ASSERT_EQ(file.records.size(), expected_shapes().size()) << describe(file) << pgmux_.log_tail();
  for (const auto& [key, rec] : file.records) {
    const ExpectedShape* shape = shape_of(rec.str("query"));
    ASSERT_NE(shape, nullptr) << rec.str("query");
    expect_record(rec, *shape, "app", "hypopg", orders_pages_["app"]);
  }

  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  long replica_calls = 0;
  for (const auto& row : queries.rows) {
    const long calls = std::atol(cell(queries, row, "calls").c_str());
    const long primary = std::atol(cell(queries, row, "primary").c_str());
    const long replica = std::atol(cell(queries, row, "replica").c_str());
    EXPECT_EQ(primary + replica, calls) << cell(queries, row, "query");
    replica_calls += replica;
  }
  EXPECT_GE(replica_calls, kCallsPerShape) << queries;
}

// At most max_query_shapes shapes are kept; the least used go first.
TEST_F(IndexAdviceTest, ShapesAreBounded) {
  PgmuxConfigOptions o;
  o.replica = false;
  o.log_level = "info";
  o.pgmux_extra = "admin_users = [\"app\"]\nmax_query_shapes = 16";
  ASSERT_TRUE(pgmux_.start(PgmuxProcess::typical_config(o)));
  auto c = client("app");
  ASSERT_TRUE(c);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(exec(c, "SELECT * FROM orders WHERE id = " + std::to_string(i + 1)).ok());
  }
  // 40 more shapes, each once: SELECT 1, SELECT 1, 1, ...
  std::string sql = "SELECT 1";
  for (int i = 0; i < 40; ++i, sql += ", 1") {
    ASSERT_TRUE(exec(c, sql).ok());
  }
  auto admin = client("pgmux");
  ASSERT_TRUE(admin);
  const PgResult queries = exec(admin, "SHOW QUERIES");
  ASSERT_TRUE(queries.ok()) << queries;
  EXPECT_LE(queries.rows.size(), 16u) << queries;
  EXPECT_GE(queries.rows.size(), 2u) << queries;
  int kept = 0;
  for (const auto& row : queries.rows) {
    if (contains(cell(queries, row, "query"), "FROM orders WHERE id")) {
      ++kept;
      EXPECT_EQ(cell(queries, row, "calls"), "20");
    }
  }
  EXPECT_EQ(kept, 1) << "the most used shape was evicted\n" << queries;
}

// Ten shapes, twenty calls each, then new shapes for 11 s (the advisor retries its connection
// every few seconds when there are samples), while the advisor cannot connect: every query
// succeeds, the failure is logged once (not per query, sample or retry), and no record is
// written. Only database app is used: one side connection.
void expect_queries_flow_without_advisor(PgmuxProcess& pgmux, const std::string& advice_path) {
  auto c = connect(pgmux.conninfo());
  ASSERT_TRUE(c) << c.error;
  const std::vector<std::string> shapes = {
      "SELECT * FROM orders WHERE customer_id = ",
      "SELECT * FROM orders WHERE product_id = ",
      "SELECT id FROM orders WHERE id = ",
      "SELECT count(*) FROM orders WHERE status = 'open' AND id > ",
      "SELECT * FROM orders ORDER BY created_at DESC LIMIT ",
      "SELECT * FROM customers WHERE email = 'user@example.com' AND id > ",
      "SELECT * FROM customers WHERE id = ",
      "SELECT * FROM tiny WHERE id = ",
      "SELECT count(*) FROM orders WHERE id > ",
      "SELECT count(*) FROM customers WHERE id > ",
  };
  int queries = 0;
  int errors = 0;
  std::string first_error;
  auto run = [&](const std::string& sql) {
    ++queries;
    const PgResult r = exec(c.conn, sql);
    if (!r.ok() && errors++ == 0) {
      first_error = sql + ": " + r.error;
    }
  };
  for (int round = 0; round < 20; ++round) {
    for (const auto& shape : shapes) {
      run(shape + std::to_string(round + 1));
    }
  }
  EXPECT_EQ(errors, 0) << first_error;
  EXPECT_TRUE(
      wait_for([&] { return !advisor_failure_lines(pgmux.log_text()).empty(); }, 15s, kPoll))
      << "the advisor's failure was never logged\n"
      << pgmux.log_tail(60);
  // A new shape (SELECT 1, 1, ...) every 200 ms, each run min_calls times: fresh samples.
  const auto until = Clock::now() + 11s;
  for (std::string sql = "SELECT 1 FROM tiny WHERE id = 1"; Clock::now() < until;
       sql.insert(7, "1, ")) {
    for (int i = 0; i < kMinCalls; ++i) {
      run(sql);
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(errors, 0) << first_error << " (" << errors << " of " << queries << " queries)";
  const auto failures = advisor_failure_lines(pgmux.log_text());
  EXPECT_EQ(failures.size(), 1u) << "logged per query, sample or retry:\n" << pgmux.log_tail(60);
  const AdviceFile file = read_advice(advice_path);
  EXPECT_EQ(file.line_count, 0) << file.text;
}

// The advisor's user has the wrong password.
TEST_F(IndexAdviceTest, AdvisorWrongPasswordQueriesFlow) {
  ASSERT_TRUE(start("user = \"app\"\npassword = \"wrong\"\n", 1, "", /*recheck_interval=*/600));
  expect_queries_flow_without_advisor(pgmux_, advice_path_);
}

// The advisor targets a replica that is down (nothing listens on its port); the clients' reads
// stay on the primary.
TEST_F(IndexAdviceTest, AdvisorServerDownQueriesFlow) {
  const int dead_port = PgmuxProcess::free_port();
  ASSERT_NE(dead_port, 0);
  const std::string replicas =
      "replicas = [\"127.0.0.1:" + std::to_string(dead_port) + "\"]\nhealth_check_period = 0.1";
  ASSERT_TRUE(start(std::string("target = \"replica\"\n") + kAdvisorApp, 1, replicas,
                    /*recheck_interval=*/600));
  expect_queries_flow_without_advisor(pgmux_, advice_path_);
}

}  // namespace
}  // namespace pooler::integration
