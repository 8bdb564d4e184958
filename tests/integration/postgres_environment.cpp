#include "tests/integration/postgres_environment.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/integration/pg_client.h"

#ifndef PGMUX_SOURCE_DIR
#error "PGMUX_SOURCE_DIR must be defined by tests/integration/CMakeLists.txt"
#endif

namespace pooler::integration {
namespace {

PostgresEnvironment* g_instance = nullptr;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string last_lines(const std::string& text, int lines) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') {
    --pos;
  }
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

// Where initdb lives, or "" if PostgreSQL is not installed (the same search as
// scripts/pg-cluster, minus pg_config).
std::string find_pg_bindir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("PG_BINDIR"); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  candidates.emplace_back("/usr/lib/postgresql/15/bin");
  for (const auto& dir : candidates) {
    if (::access((dir + "/initdb").c_str(), X_OK) == 0) {
      return dir;
    }
  }
  return "";
}

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace

std::string_view to_string(Node node) {
  return node == Node::Primary ? "primary" : "replica";
}

CommandResult run_command(const std::vector<std::string>& argv) {
  CommandResult result;
  if (argv.empty()) {
    result.output = "run_command: empty argv";
    return result;
  }
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe2: ") + std::strerror(errno);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.output = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, 0);
    }
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execvp(args[0], args.data());
    constexpr char kMsg[] = "run_command: exec failed\n";
    [[maybe_unused]] auto ignored = ::write(2, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

PostgresEnvironment::PostgresEnvironment(PostgresOptions options) : options_(options) {
  g_instance = this;
}

PostgresEnvironment::~PostgresEnvironment() {
  if (g_instance == this) {
    g_instance = nullptr;
  }
}

PostgresEnvironment& PostgresEnvironment::instance() {
  if (g_instance == nullptr) {
    std::fprintf(stderr,
                 "PostgresEnvironment::instance(): no environment registered; link the test "
                 "with pgmux_integration_main (pgmux_integration_test() in CMake)\n");
    std::abort();
  }
  return *g_instance;
}

std::string PostgresEnvironment::source_dir() {
  return PGMUX_SOURCE_DIR;
}

std::string PostgresEnvironment::cluster_script() {
  return source_dir() + "/scripts/pg-cluster";
}

void PostgresEnvironment::SetUp() {
  if (find_pg_bindir().empty()) {
    GTEST_SKIP() << "PostgreSQL 15 binaries not found (set PG_BINDIR or run "
                    "scripts/install-deps); skipping the integration tests";
  }
  // Under /tmp, not $TMPDIR: the server user must be able to reach it, and the Unix
  // socket path must stay short.
  char dir_template[] = "/tmp/pgmux-it-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    GTEST_FAIL() << "mkdtemp: " << std::strerror(errno);
  }
  cluster_dir_ = dir_template;

  std::vector<std::string> argv = {cluster_script(), "start", cluster_dir_};
  if (!options_.replica) {
    argv.emplace_back("--no-replica");
  }
  // If this process dies without TearDown (crash, ctest timeout), the cluster follows.
  argv.emplace_back("--watch-pid");
  argv.emplace_back(std::to_string(::getpid()));

  const CommandResult started = run_command(argv);
  std::fputs(started.output.c_str(), stdout);
  std::fflush(stdout);
  if (!started.ok()) {
    GTEST_FAIL() << "scripts/pg-cluster start " << cluster_dir_ << " failed (exit "
                 << started.exit_code << "):\n"
                 << started.output;
  }
  started_ = true;
  std::string error;
  if (!parse_cluster_env(&error)) {
    GTEST_FAIL() << "reading " << cluster_dir_ << "/cluster.env: " << error;
  }
}

void PostgresEnvironment::TearDown() {
  if (cluster_dir_.empty()) {
    return;
  }
  const bool keep = env_flag("PGMUX_KEEP_CLUSTER");
  std::vector<std::string> argv = {cluster_script(), "stop", cluster_dir_};
  if (!keep) {
    argv.emplace_back("--rm");
  }
  const CommandResult stopped = run_command(argv);
  if (!stopped.ok()) {
    ADD_FAILURE() << "scripts/pg-cluster stop " << cluster_dir_ << " failed:\n" << stopped.output;
  } else if (keep) {
    std::printf("PGMUX_KEEP_CLUSTER: cluster stopped, files kept in %s\n", cluster_dir_.c_str());
  }
  started_ = false;
  cluster_dir_.clear();
}

bool PostgresEnvironment::parse_cluster_env(std::string* error) {
  std::ifstream in(cluster_dir_ + "/cluster.env");
  if (!in) {
    *error = "cannot open the file";
    return false;
  }
  std::map<std::string, std::string> values;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    values[line.substr(0, eq)] = value;
  }
  try {
    primary_port_ = std::stoi(values.at("PRIMARY_PORT"));
    const std::string& replica = values.at("REPLICA_PORT");
    replica_port_ = replica.empty() ? 0 : std::stoi(replica);
    socket_dir_ = values.at("SOCKET_DIR");
    bindir_ = values.at("PG_BINDIR");
  } catch (const std::exception& e) {
    *error = std::string("missing or bad value: ") + e.what();
    return false;
  }
  if (options_.replica && replica_port_ == 0) {
    *error = "no REPLICA_PORT although a replica was requested";
    return false;
  }
  return true;
}

std::string PostgresEnvironment::log_path(Node node) const {
  return cluster_dir_ + "/" + std::string(to_string(node)) + ".log";
}

std::string PostgresEnvironment::log_tail(Node node, int lines) const {
  return last_lines(read_file(log_path(node)), lines);
}

std::string PostgresEnvironment::superuser_conninfo(Node node, std::string_view dbname) const {
  return make_conninfo({{"host", socket_dir_},
                        {"port", std::to_string(port(node))},
                        {"user", "postgres"},
                        {"dbname", std::string(dbname)},
                        {"connect_timeout", "10"}});
}

std::string PostgresEnvironment::tcp_conninfo(Node node, std::string_view user,
                                              std::string_view password,
                                              std::string_view dbname) const {
  return make_conninfo({{"host", "127.0.0.1"},
                        {"port", std::to_string(port(node))},
                        {"user", std::string(user)},
                        {"password", std::string(password)},
                        {"dbname", std::string(dbname)},
                        {"sslmode", "disable"},
                        {"gssencmode", "disable"},
                        {"connect_timeout", "10"}});
}

CommandResult PostgresEnvironment::run_ctl(Node node, const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {cluster_script(), "ctl", cluster_dir_,
                                   std::string(to_string(node))};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

CommandResult PostgresEnvironment::reset_replica() const {
  return run_command({cluster_script(), "reset-replica", cluster_dir_});
}

::testing::AssertionResult PostgresEnvironment::wait_replica_caught_up(
    std::chrono::milliseconds timeout) const {
  if (!has_replica()) {
    return ::testing::AssertionFailure() << "this cluster has no replica";
  }
  auto primary = connect(superuser_conninfo(Node::Primary));
  if (!primary) {
    return ::testing::AssertionFailure() << "connecting to the primary: " << primary.error;
  }
  // The cluster runs with synchronous_commit=off, so earlier commits may still sit in
  // WAL buffers. A synchronous commit of our own that writes WAL (a transactional
  // logical message; txid_current() alone would commit asynchronously) flushes
  // everything before it; then the write position, a record end, covers every write
  // made before this call. Separate statements: one string would be one transaction.
  auto flushed = exec(primary.conn, "SET synchronous_commit = on");
  if (flushed.ok()) {
    flushed = exec(primary.conn, "SELECT pg_logical_emit_message(true, 'pgmux-test', 'sync')");
  }
  const auto lsn = query_value(primary.conn, "SELECT pg_current_wal_lsn()");
  if (!flushed.ok() || !lsn) {
    return ::testing::AssertionFailure() << "reading the WAL position of the primary: " << flushed;
  }
  auto replica = connect(superuser_conninfo(Node::Replica));
  if (!replica) {
    return ::testing::AssertionFailure() << "connecting to the replica: " << replica.error;
  }
  const std::string sql = "SELECT pg_last_wal_replay_lsn() >= '" + *lsn + "'::pg_lsn";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    const PgResult r = exec(replica.conn, sql);
    if (r.ok() && r.first() == "t") {
      return ::testing::AssertionSuccess();
    }
    last = r.ok() ? "replayed LSN still behind " + *lsn : r.error;
    if (std::chrono::steady_clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "replica not caught up after " << timeout.count() << " ms: " << last
             << "\nreplica log:\n"
             << log_tail(Node::Replica, 15);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace pooler::integration
