#pragma once
// One throwaway PostgreSQL 15 primary + streaming replica per integration test binary,
// started by scripts/pg-cluster into a fresh /tmp directory (own loopback ports, own
// Unix socket dir, fsync off) and removed at the end. Registered once per binary by
// pgmux_integration_main (integration_main.cpp); tests reach it through instance().
//
// Roles (see scripts/pg-cluster): postgres/postgres (superuser), app/secret (SCRAM),
// app_md5/secret_md5 (md5), other/other_secret. Databases: app (owner app), other.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace pooler::integration {

enum class Node { Primary, Replica };
std::string_view to_string(Node node);  // "primary", "replica"

struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal number, or -1 if it did not run
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return exit_code == 0; }
};

// Runs argv[0] (searched on PATH) with the given arguments, no shell, and waits for it.
CommandResult run_command(const std::vector<std::string>& argv);

struct PostgresOptions {
  bool replica = true;  // false: primary only (faster start)
};

class PostgresEnvironment : public ::testing::Environment {
 public:
  explicit PostgresEnvironment(PostgresOptions options = {});
  ~PostgresEnvironment() override;
  PostgresEnvironment(const PostgresEnvironment&) = delete;
  PostgresEnvironment& operator=(const PostgresEnvironment&) = delete;

  // The registered environment. Aborts if the binary did not register one.
  static PostgresEnvironment& instance();

  // Starts the cluster; skips every test if the PostgreSQL binaries are missing, fails
  // them all (with pg-cluster's output) if the cluster does not come up.
  void SetUp() override;
  // Stops the cluster and removes its directory (kept if PGMUX_KEEP_CLUSTER=1).
  void TearDown() override;

  int primary_port() const { return primary_port_; }
  int replica_port() const { return replica_port_; }  // 0 without a replica
  int port(Node node) const { return node == Node::Primary ? primary_port_ : replica_port_; }
  bool has_replica() const { return replica_port_ != 0; }
  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& cluster_dir() const { return cluster_dir_; }
  const std::string& bindir() const { return bindir_; }
  std::string log_path(Node node) const;  // the server log of `node`

  // Superuser (postgres) over the Unix socket; trust auth, no password needed.
  std::string superuser_conninfo(Node node, std::string_view dbname = "postgres") const;
  // Any user over TCP to 127.0.0.1:port(node), e.g. ("app", "secret", "app").
  std::string tcp_conninfo(Node node, std::string_view user, std::string_view password,
                           std::string_view dbname) const;

  // `pg_ctl ARGS -D <node's data dir>` as the server user, e.g. {"stop", "-m", "fast"},
  // {"start"} (log goes to the node's log), {"promote"}.
  CommandResult run_ctl(Node node, const std::vector<std::string>& args) const;
  // Throws the replica away and takes a fresh base backup of the current primary (same
  // port); use after a test promoted or broke it. Waits until it streams.
  CommandResult reset_replica() const;
  // True once the replica has replayed everything the primary had written when called.
  ::testing::AssertionResult wait_replica_caught_up(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // The last `lines` lines of a node's server log, for failure messages.
  std::string log_tail(Node node, int lines = 30) const;

  static std::string source_dir();      // the repository root (PGMUX_SOURCE_DIR)
  static std::string cluster_script();  // <source_dir>/scripts/pg-cluster

 private:
  bool parse_cluster_env(std::string* error);

  PostgresOptions options_;
  std::string cluster_dir_;
  std::string socket_dir_;
  std::string bindir_;
  int primary_port_ = 0;
  int replica_port_ = 0;
  bool started_ = false;
};

}  // namespace pooler::integration
