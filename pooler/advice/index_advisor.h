#pragma once
// The index advisor: a thread of its own that takes samples from the workers, EXPLAINs
// them (never EXPLAIN ANALYZE) on one side connection per database, reads the catalogue,
// and turns plans that lack an index into records (router/index_advice.h judges them).
// Never in a client's path: workers only push to a bounded queue.
//
// The side connections are read-only (default_transaction_read_only), with a short
// statement_timeout and lock_timeout, and no parallel plans (so row estimates are the
// whole scan's). With the hypopg extension in the database, a proposal is kept only if
// the planner would use a hypothetical index and the plan's cost falls by half; without it
// pgmux's own estimate must fall by half. A database that cannot be reached is logged
// once per retry interval and tried again after it, not per sample.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "pooler/advice/advice_store.h"
#include "pooler/advice/sample.h"
#include "pooler/config/config.h"

struct pg_conn;

namespace pooler::advice {

class IndexAdvisor {
 public:
  // Who logs in to `db` when [index_advice] names no user (the health checks' login).
  using Credentials = std::function<std::optional<std::pair<std::string, std::string>>(
      const config::Config&, const config::DatabaseConfig&)>;

  IndexAdvisor(SampleQueue& queue, AdviceStore& store, Credentials credentials);
  ~IndexAdvisor();  // stop()
  IndexAdvisor(const IndexAdvisor&) = delete;
  IndexAdvisor& operator=(const IndexAdvisor&) = delete;

  void start(std::shared_ptr<const config::Config> config);
  void set_config(std::shared_ptr<const config::Config> config);  // reload
  void stop();

  struct Stats {
    std::uint64_t samples = 0;
    std::uint64_t explains = 0;
    std::uint64_t explain_errors = 0;
    std::uint64_t connect_errors = 0;
  };
  Stats stats() const;

 private:
  struct Side;       // one side connection
  struct ShapeSeen;  // what the advisor knows of one shape

  void run();
  // False when the sample's database could not be reached (to be tried again).
  bool handle(const Sample& sample);
  void judge(const Sample& sample, const config::Config& config, const config::DatabaseConfig& db);
  pg_conn* connection(const config::Config& config, const config::DatabaseConfig& db);
  void wait_for_token(const config::IndexAdviceConfig& cfg);

  SampleQueue& queue_;
  AdviceStore& store_;
  Credentials credentials_;
  std::thread thread_;
  mutable std::mutex mutex_;  // config_ and stats_
  std::shared_ptr<const config::Config> config_;
  Stats stats_;
  // Advisor thread only:
  std::map<std::string, std::unique_ptr<Side>, std::less<>> sides_;
  std::unordered_map<std::uint64_t, std::unique_ptr<ShapeSeen>> shapes_;
  double tokens_ = 0;
  std::uint64_t tokens_at_ms_ = 0;
};

}  // namespace pooler::advice
