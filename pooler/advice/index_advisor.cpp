#include "pooler/advice/index_advisor.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "parser/analyzer.h"
#include "pooler/base/clock.h"
#include "pooler/base/log.h"
#include "router/index_advice.h"

namespace pooler::advice {

namespace {

// A database that cannot be reached is tried again after this long ...
constexpr std::uint64_t kConnectRetryMs = 10'000;
// ... and its failure logged at most this often (or once per recheck interval if longer).
constexpr std::uint64_t kMinLogIntervalMs = 60'000;
// Samples kept while their database cannot be reached, to judge once it can.
constexpr std::size_t kMaxPending = 1000;
// Shapes remembered (when judged, what each worker counted); forgotten all at once beyond.
constexpr std::size_t kMaxShapesSeen = 100'000;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

PgResult exec(PGconn* conn, const std::string& sql) { return PgResult(PQexec(conn, sql.c_str())); }

PgResult exec_params(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  return PgResult(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
}

bool ok(const PgResult& r) {
  const auto status = PQresultStatus(r.get());
  return status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  if (text.empty()) {
    return out;
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == sep) {
      out.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// The table's size, rows, columns and the key columns of its valid indexes (expression
// keys as ""), separated by control characters that names cannot hold unquoted.
constexpr const char* kTableFactsSql = R"sql(
SELECT c.reltuples::float8,
       (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8,
       (SELECT string_agg(a.attname, chr(31) ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
       (SELECT string_agg(k.cols, chr(30)) FROM (
          SELECT (SELECT string_agg(coalesce(a.attname, ''), chr(31) ORDER BY o.n)
                    FROM unnest(i.indkey::int2[]) WITH ORDINALITY o(attnum, n)
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = o.attnum
                   WHERE o.n <= i.indnkeyatts) AS cols
            FROM pg_index i WHERE i.indrelid = c.oid AND i.indisvalid) k)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2)sql";

std::optional<router::TableFacts> table_facts(PGconn* conn, const std::string& schema,
                                              const std::string& relation) {
  PgResult r = exec_params(conn, kTableFactsSql, {schema, relation});
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    return std::nullopt;
  }
  router::TableFacts facts;
  facts.rows = std::strtod(PQgetvalue(r.get(), 0, 0), nullptr);
  facts.pages = std::strtod(PQgetvalue(r.get(), 0, 1), nullptr);
  facts.columns = split(PQgetvalue(r.get(), 0, 2), '\x1f');
  for (const auto& index : split(PQgetvalue(r.get(), 0, 3), '\x1e')) {
    facts.indexes.push_back(split(index, '\x1f'));
  }
  return facts;
}

}  // namespace

struct IndexAdvisor::Side {
  PGconn* conn = nullptr;
  std::string signature;  // host, port, user: a reload that changes them reconnects
  std::uint64_t retry_at_ms = 0;
  std::uint64_t next_log_ms = 0;
  std::uint64_t next_role_log_ms = 0;

  ~Side() { close(); }
  void close() {
    if (conn != nullptr) {
      PQfinish(conn);
      conn = nullptr;
    }
  }
};

struct IndexAdvisor::ShapeSeen {
  bool judged = false;
  std::uint64_t judged_at_ms = 0;
  std::map<int, std::pair<std::uint64_t, std::uint64_t>> per_worker;  // calls, total_ns
  std::uint64_t first_seen_ms = ~std::uint64_t{0};
  std::uint64_t last_seen_ms = 0;
};

IndexAdvisor::IndexAdvisor(SampleQueue& queue, AdviceStore& store, Credentials credentials)
    : queue_(queue), store_(store), credentials_(std::move(credentials)) {}

IndexAdvisor::~IndexAdvisor() { stop(); }

void IndexAdvisor::start(std::shared_ptr<const config::Config> config) {
  set_config(std::move(config));
  thread_ = std::thread([this] { run(); });
}

void IndexAdvisor::set_config(std::shared_ptr<const config::Config> config) {
  std::lock_guard lock(mutex_);
  config_ = std::move(config);
}

void IndexAdvisor::stop() {
  queue_.close();
  if (thread_.joinable()) {
    thread_.join();
  }
}

IndexAdvisor::Stats IndexAdvisor::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void IndexAdvisor::run() {
  // Samples not judged because their database could not be reached: judged once it can.
  std::map<std::uint64_t, Sample> pending;
  while (!queue_.closed()) {
    if (std::optional<Sample> sample = queue_.pop(std::chrono::milliseconds(1000))) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.samples;
      }
      if (!handle(*sample) && pending.size() < kMaxPending) {
        pending.insert_or_assign(sample->key, std::move(*sample));
      }
    }
    const std::uint64_t now = steady_ms();
    for (auto it = pending.begin(); it != pending.end() && !queue_.closed();) {
      auto side = sides_.find(it->second.database);
      if (side != sides_.end() && side->second->retry_at_ms > now) {
        ++it;
        continue;
      }
      if (handle(it->second)) {
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }
  sides_.clear();
}

bool IndexAdvisor::handle(const Sample& sample) {
  std::shared_ptr<const config::Config> config;
  {
    std::lock_guard lock(mutex_);
    config = config_;
  }
  if (!config || !config->index_advice.enabled) {
    return true;
  }
  const config::IndexAdviceConfig& cfg = config->index_advice;
  if (shapes_.size() > kMaxShapesSeen) {
    shapes_.clear();
  }
  auto& slot = shapes_[sample.key];
  if (!slot) {
    slot = std::make_unique<ShapeSeen>();
  }
  ShapeSeen& seen = *slot;
  seen.per_worker[sample.worker] = {sample.calls, sample.total_ns};
  seen.first_seen_ms = std::min(seen.first_seen_ms, sample.first_seen_ms);
  seen.last_seen_ms = std::max(seen.last_seen_ms, sample.last_seen_ms);
  std::uint64_t calls = 0;
  std::uint64_t total_ns = 0;
  for (const auto& [worker, counts] : seen.per_worker) {
    calls += counts.first;
    total_ns += counts.second;
  }
  store_.update_counts(sample.database, sample.fingerprint, calls,
                       static_cast<double>(total_ns) / 1e6, seen.last_seen_ms);

  const std::uint64_t now = steady_ms();
  const auto recheck = static_cast<std::uint64_t>(cfg.recheck_interval.count());
  if (seen.judged && now < seen.judged_at_ms + recheck) {
    return true;
  }
  const config::DatabaseConfig* db = config->find_database(sample.database);
  if (db == nullptr) {
    return true;
  }
  if (connection(*config, *db) == nullptr) {
    return false;  // not judged: run() keeps it until the database can be reached
  }
  seen.judged = true;
  seen.judged_at_ms = now;
  wait_for_token(cfg);
  Sample counted = sample;
  counted.calls = calls;
  counted.total_ns = total_ns;
  counted.first_seen_ms = seen.first_seen_ms;
  counted.last_seen_ms = seen.last_seen_ms;
  judge(counted, *config, *db);
  return true;
}

void IndexAdvisor::wait_for_token(const config::IndexAdviceConfig& cfg) {
  const double rate = std::max(1, cfg.explain_rate);
  std::uint64_t now = steady_ms();
  tokens_ = std::min(rate, tokens_ + static_cast<double>(now - tokens_at_ms_) * rate / 1000.0);
  tokens_at_ms_ = now;
  if (tokens_ < 1.0) {
    const auto wait_ms = static_cast<std::int64_t>((1.0 - tokens_) * 1000.0 / rate) + 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    now = steady_ms();
    tokens_ = std::min(rate, tokens_ + static_cast<double>(now - tokens_at_ms_) * rate / 1000.0);
    tokens_at_ms_ = now;
  }
  tokens_ = std::max(0.0, tokens_ - 1.0);
}

PGconn* IndexAdvisor::connection(const config::Config& config, const config::DatabaseConfig& db) {
  const config::IndexAdviceConfig& cfg = config.index_advice;
  std::optional<std::pair<std::string, std::string>> login;
  if (cfg.user) {
    login = std::pair{*cfg.user, cfg.password.value_or("")};
  } else if (credentials_) {
    login = credentials_(config, db);
  }
  const config::HostPort& host =
      cfg.target == config::IndexAdviceConfig::Target::Replica && !db.replicas.empty()
          ? db.replicas.front()
          : db.primary;
  auto& slot = sides_[db.name];
  if (!slot) {
    slot = std::make_unique<Side>();
  }
  Side& side = *slot;
  const std::string signature =
      host.to_string() + "/" + (login ? login->first : std::string()) + "/" + db.dbname;
  if (side.signature != signature) {
    side.close();
    side.signature = signature;
    side.retry_at_ms = 0;
  }
  if (side.conn != nullptr && PQstatus(side.conn) == CONNECTION_OK) {
    return side.conn;
  }
  side.close();
  const std::uint64_t now = steady_ms();
  if (now < side.retry_at_ms) {
    return nullptr;
  }
  const std::uint64_t log_every = std::max<std::uint64_t>(
      kMinLogIntervalMs, static_cast<std::uint64_t>(cfg.recheck_interval.count()));
  auto failed = [&](const std::string& why) {
    side.retry_at_ms = now + kConnectRetryMs;
    {
      std::lock_guard lock(mutex_);
      ++stats_.connect_errors;
    }
    if (now >= side.next_log_ms) {
      side.next_log_ms = now + log_every;
      spdlog::warn(
          "index advisor: cannot connect to database {} at {}: {} (retrying every {} s; "
          "queries are not affected)",
          db.name, host.to_string(), why, kConnectRetryMs / 1000);
    }
  };
  if (!login) {
    failed("no user to log in with (set user and password in [index_advice])");
    return nullptr;
  }
  const std::string port = std::to_string(host.port);
  const std::string options =
      "-c statement_timeout=" + std::to_string(cfg.statement_timeout.count()) +
      " -c lock_timeout=" +
      std::to_string(std::min<std::int64_t>(cfg.statement_timeout.count(), 500)) +
      " -c default_transaction_read_only=on -c max_parallel_workers_per_gather=0";
  const char* keys[] = {
      "host",    "port", "user", "password", "dbname", "connect_timeout", "application_name",
      "options", nullptr};
  const char* values[] = {host.host.c_str(),     port.c_str(),      login->first.c_str(),
                          login->second.c_str(), db.dbname.c_str(), "5",
                          "pgmux-index-advisor", options.c_str(),   nullptr};
  side.conn = PQconnectdbParams(keys, values, 0);
  if (PQstatus(side.conn) != CONNECTION_OK) {
    failed(log::first_line(PQerrorMessage(side.conn)));
    side.close();
    return nullptr;
  }
  spdlog::info("index advisor: connected to database {} at {} as {}", db.name, host.to_string(),
               login->first);
  side.next_log_ms = 0;
  return side.conn;
}

void IndexAdvisor::judge(const Sample& sample, const config::Config& config,
                         const config::DatabaseConfig& db) {
  auto analysis = parser::analyze(sample.sql);
  if (!analysis || analysis->parse_error || analysis->statements.size() != 1) {
    return;
  }
  const parser::StatementInfo& st = analysis->statements.front();
  if ((st.kind != parser::StatementKind::Select && st.kind != parser::StatementKind::Update &&
       st.kind != parser::StatementKind::Delete) ||
      (st.predicates.empty() && st.order_by.empty())) {
    return;  // nothing an index could serve
  }
  PGconn* conn = connection(config, db);
  if (conn == nullptr) {
    return;
  }
  // The EXPLAIN plans the client's text, which may fold the client's own functions: it runs
  // with the client's privileges (its role on the server), never the advisor's.
  const std::string role = db.server_user.value_or(sample.user);
  if (PgResult r = exec(conn, "SET ROLE " + router::quote_identifier(role)); !ok(r)) {
    Side& side = *sides_[db.name];
    const std::uint64_t now = steady_ms();
    if (now >= side.next_role_log_ms) {
      side.next_role_log_ms = now + kMinLogIntervalMs;
      spdlog::warn(
          "index advisor: database {}: cannot plan queries of role {} ({}); grant that "
          "role to the advisor's user or set user in [index_advice]",
          db.name, role, log::first_line(PQresultErrorMessage(r.get())));
    }
    return;
  }
  if (!sample.search_path_sql.empty()) {
    exec(conn, sample.search_path_sql);
  }
  const std::string explain_sql = "EXPLAIN (FORMAT JSON, VERBOSE) " + sample.sql;
  // One type and format per value, whatever the client's Parse and Bind listed (fewer
  // types than values is allowed there: the rest are inferred, as 0 asks here).
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto& p : sample.params) {
    values.push_back(p ? p->data() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
  }
  std::vector<Oid> types(sample.param_types.begin(), sample.param_types.end());
  types.resize(values.size(), 0);
  std::vector<int> formats = sample.param_formats;
  formats.resize(values.size(), 0);
  auto explain = [&]() {
    return PgResult(PQexecParams(conn, explain_sql.c_str(), static_cast<int>(values.size()),
                                 types.data(), values.data(), lengths.data(), formats.data(), 0));
  };
  PgResult before = explain();
  {
    std::lock_guard lock(mutex_);
    ++stats_.explains;
    stats_.explain_errors += ok(before) ? 0 : 1;
  }
  auto finish = [&] { exec(conn, "RESET search_path; RESET ROLE"); };
  if (!ok(before) || PQntuples(before.get()) != 1) {
    spdlog::debug("index advisor: EXPLAIN failed for a shape of database {}: {}", db.name,
                  log::first_line(PQresultErrorMessage(before.get())));
    finish();
    if (PQstatus(conn) != CONNECTION_OK) {
      sides_[db.name]->close();
    }
    return;
  }
  const std::string plan_json = PQgetvalue(before.get(), 0, 0);
  auto plan = router::read_plan(plan_json);
  if (!plan) {
    finish();
    return;
  }
  const config::IndexAdviceConfig& cfg = config.index_advice;
  router::Thresholds t;
  t.min_table_pages = static_cast<double>(cfg.min_table_pages);
  t.min_table_rows = static_cast<double>(cfg.min_table_rows);
  t.max_selectivity = cfg.max_selectivity;
  bool hypopg = false;
  if (PgResult r = exec(conn, "SELECT 1 FROM pg_extension WHERE extname = 'hypopg'");
      PQresultStatus(r.get()) == PGRES_TUPLES_OK) {
    hypopg = PQntuples(r.get()) == 1;
  }
  std::optional<AdviceRecord> kept;
  for (const router::SeqScan& scan : plan->scans) {
    auto facts = table_facts(conn, scan.schema, scan.relation);
    if (!facts) {
      continue;
    }
    std::string why_not;
    auto proposal = router::propose(*plan, scan, *facts, st, t, &why_not);
    if (!proposal) {
      spdlog::debug("index advisor: no advice for {}.{} in database {}: {}", scan.schema,
                    scan.relation, db.name, why_not);
      continue;
    }
    AdviceRecord record;
    record.cost_after = proposal->estimated_cost_after;
    record.judged_by = "estimate";
    if (hypopg) {
      const std::string ddl =
          router::index_ddl(scan.schema, scan.relation, proposal->columns, /*concurrently=*/false);
      PgResult made = exec_params(conn, "SELECT indexname FROM hypopg_create_index($1)", {ddl});
      if (PQresultStatus(made.get()) == PGRES_TUPLES_OK && PQntuples(made.get()) == 1) {
        const std::string name = PQgetvalue(made.get(), 0, 0);
        PgResult after = explain();
        bool used = false;
        double cost_after = 0;
        if (ok(after) && PQntuples(after.get()) == 1) {
          const std::string after_json = PQgetvalue(after.get(), 0, 0);
          used = router::plan_uses_index(after_json, name);
          if (auto p = router::read_plan(after_json)) {
            cost_after = p->total_cost;
          }
        }
        exec(conn, "SELECT hypopg_reset()");
        if (!used || cost_after > 0.5 * proposal->cost_before) {
          spdlog::debug("index advisor: hypopg: {} would not help ({}; cost {:.1f} -> {:.1f})", ddl,
                        used ? "used" : "not used", proposal->cost_before, cost_after);
          continue;
        }
        record.judged_by = "hypopg";
        record.cost_after = cost_after;
      } else if (!router::estimate_helps(*proposal)) {
        continue;
      }
    } else if (!router::estimate_helps(*proposal)) {
      spdlog::debug("index advisor: estimate: {} would not halve the cost ({:.1f} -> {:.1f})",
                    proposal->ddl, proposal->cost_before, proposal->estimated_cost_after);
      continue;
    }
    record.database = sample.database;
    record.fingerprint = sample.fingerprint;
    record.query = analysis->normalized.empty() ? sample.query : analysis->normalized;
    record.table = proposal->table;
    record.columns = proposal->columns;
    record.ddl = proposal->ddl;
    record.reason = proposal->reason;
    record.plan_node = "Seq Scan";
    record.plan_rows = scan.plan_rows;
    record.table_rows = facts->rows;
    record.table_pages = facts->pages;
    record.cost_before = proposal->cost_before;
    record.calls = sample.calls;
    record.total_time_ms = static_cast<double>(sample.total_ns) / 1e6;
    record.first_seen_ms = sample.first_seen_ms;
    record.last_seen_ms = sample.last_seen_ms;
    kept = std::move(record);
    break;  // one record per shape: the first table that needs an index
  }
  finish();
  if (!kept) {
    store_.remove(sample.database, sample.fingerprint);  // e.g. the index exists by now
    return;
  }
  if (store_.upsert(*kept) == AdviceStore::Change::Created) {
    spdlog::info(
        "index advice: database {}: table {} lacks an index on ({}) for a query "
        "called {} times; judged by {}: {}",
        kept->database, kept->table, fmt::join(kept->columns, ", "), kept->calls, kept->judged_by,
        kept->ddl);
  }
}

}  // namespace pooler::advice
