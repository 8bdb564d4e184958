#pragma once
// The pgmux binary as a child process of the test: writes the config to a temp dir,
// runs `pgmux --config FILE` with stdout+stderr in a log file, and waits until its
// port accepts TCP connections. Owned by one test; stopped (SIGTERM, then SIGKILL)
// on destruction. If the test failed, the destructor prints the log tail.
//
// Placeholders replaced in config text (start() and rewrite_config()):
//   @LISTEN_PORT@   the port pgmux listens on (PgmuxOptions::port, or a free one)
//   @PRIMARY_PORT@ @REPLICA_PORT@ @SOCKET_DIR@   from PostgresEnvironment

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace pooler::integration {

struct PgmuxOptions {
  int port = 0;                         // 0: pick a free loopback port for @LISTEN_PORT@
  std::vector<std::string> extra_args;  // appended after --config FILE
  std::vector<std::string> env;         // "KEY=VALUE" added to the child's environment
  std::chrono::milliseconds ready_timeout{10'000};
  std::string binary;                   // "" = binary_path(); tests of the fixture override it
};

// What typical_config() varies. Users app/secret (scram), app_md5/secret_md5 (md5) and
// other/other_secret (scram) are always there; databases app and other.
struct PgmuxConfigOptions {
  std::string pool_mode = "transaction";  // "session" | "transaction" | "statement"
  int pool_size = 10;
  bool replica = false;                   // list the fixture's replica: reads are routed to it
  int workers = 1;
  std::string log_level = "debug";
  std::string pgmux_extra;     // TOML lines added to [pgmux], e.g. "query_wait_timeout = 1"
  std::string database_extra;  // TOML lines added to each [databases.*], e.g. "min_pool_size = 2"
  std::string extra;           // appended at the end verbatim (more tables)
};

class PgmuxProcess {
 public:
  PgmuxProcess() = default;
  ~PgmuxProcess();
  PgmuxProcess(const PgmuxProcess&) = delete;
  PgmuxProcess& operator=(const PgmuxProcess&) = delete;

  // $PGMUX_BINARY if set, else the build's pgmux (compile definition PGMUX_BINARY).
  static std::string binary_path();
  static bool binary_exists();
  // A loopback TCP port that was free a moment ago (the kernel's choice).
  static int free_port();
  // A config for the fixture's cluster with @LISTEN_PORT@ etc. still in it.
  static std::string typical_config(const PgmuxConfigOptions& options = {});

  // Writes `config` (placeholders filled), spawns pgmux, waits for its port. On
  // failure (exec error, early exit, timeout) the message carries the log tail.
  ::testing::AssertionResult start(std::string_view config, const PgmuxOptions& options = {});

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running();  // reaps the child if it has exited
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  std::string log_text() const;
  std::string log_tail(int lines = 40) const;

  // Replaces the config file (placeholders filled); follow with signal(SIGHUP).
  void rewrite_config(std::string_view config);
  // Sends `sig`; false if the process is not running.
  bool signal(int sig);
  // Waits for the process to exit on its own; its exit status (see stop()), or -1 on
  // timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status: the exit
  // code, or 128 + signal if killed by a signal (137 after our SIGKILL); -1 if never
  // started. Calling it again returns the same status.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Resident set size from /proc/PID/status (VmRSS), in KiB; -1 if unavailable.
  long rss_kb() const;

  // libpq conninfo for a client of this pgmux.
  std::string conninfo(std::string_view user = "app", std::string_view password = "secret",
                       std::string_view dbname = "app") const;

 private:
  std::string fill_placeholders(std::string_view config) const;
  bool try_reap(bool block);

  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
  std::string work_dir_;
  std::string config_path_;
  std::string log_path_;
};

}  // namespace pooler::integration
