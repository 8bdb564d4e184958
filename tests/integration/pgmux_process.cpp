#include "tests/integration/pgmux_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/pg_client.h"
#include "tests/integration/postgres_environment.h"

#ifndef PGMUX_BINARY
#error "PGMUX_BINARY must be defined by tests/integration/CMakeLists.txt"
#endif

extern char** environ;

namespace pooler::integration {
namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

// True if something accepts TCP connections on 127.0.0.1:port.
bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

int decode_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool write_text(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

std::string PgmuxProcess::binary_path() {
  if (const char* env = std::getenv("PGMUX_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
  return PGMUX_BINARY;
}

bool PgmuxProcess::binary_exists() {
  return ::access(binary_path().c_str(), X_OK) == 0;
}

int PgmuxProcess::free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string PgmuxProcess::typical_config(const PgmuxConfigOptions& options) {
  std::ostringstream out;
  out << "[pgmux]\n"
      << "listen = [\"127.0.0.1:@LISTEN_PORT@\"]\n"
      << "workers = " << options.workers << "\n"
      << "log_level = \"" << options.log_level << "\"\n";
  if (!options.pgmux_extra.empty()) {
    out << options.pgmux_extra << "\n";
  }
  out << "\n";
  for (const char* db : {"app", "other"}) {
    out << "[databases." << db << "]\n"
        << "dbname = \"" << db << "\"\n"
        << "primary = \"127.0.0.1:@PRIMARY_PORT@\"\n";
    if (options.replica) {
      out << "replicas = [\"127.0.0.1:@REPLICA_PORT@\"]\n";
    }
    out << "pool_mode = \"" << options.pool_mode << "\"\n"
        << "pool_size = " << options.pool_size << "\n";
    if (!options.database_extra.empty()) {
      out << options.database_extra << "\n";
    }
    out << "\n";
  }
  out << "[users.app]\npassword = \"secret\"\nauth = \"scram-sha-256\"\n\n"
      << "[users.app_md5]\npassword = \"secret_md5\"\nauth = \"md5\"\n\n"
      << "[users.other]\npassword = \"other_secret\"\nauth = \"scram-sha-256\"\n";
  if (!options.extra.empty()) {
    out << "\n" << options.extra << "\n";
  }
  return out.str();
}

std::string PgmuxProcess::fill_placeholders(std::string_view config) const {
  std::string text(config);
  replace_all(text, "@LISTEN_PORT@", std::to_string(port_));
  const bool needs_cluster = text.find("@PRIMARY_PORT@") != std::string::npos ||
                             text.find("@REPLICA_PORT@") != std::string::npos ||
                             text.find("@SOCKET_DIR@") != std::string::npos;
  if (needs_cluster) {
    const auto& pg = PostgresEnvironment::instance();
    replace_all(text, "@PRIMARY_PORT@", std::to_string(pg.primary_port()));
    replace_all(text, "@REPLICA_PORT@", std::to_string(pg.replica_port()));
    replace_all(text, "@SOCKET_DIR@", pg.socket_dir());
  }
  return text;
}

::testing::AssertionResult PgmuxProcess::start(std::string_view config,
                                               const PgmuxOptions& options) {
  if (pid_ > 0) {
    return ::testing::AssertionFailure() << "PgmuxProcess::start called twice";
  }
  const std::string binary = options.binary.empty() ? binary_path() : options.binary;
  if (::access(binary.c_str(), X_OK) != 0) {
    return ::testing::AssertionFailure() << "pgmux binary " << binary << " is not executable";
  }
  port_ = options.port != 0 ? options.port : free_port();
  if (port_ == 0) {
    return ::testing::AssertionFailure() << "no free port for pgmux";
  }
  char dir_template[] = "/tmp/pgmux-proc-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    return ::testing::AssertionFailure() << "mkdtemp: " << std::strerror(errno);
  }
  work_dir_ = dir_template;
  config_path_ = work_dir_ + "/pgmux.toml";
  log_path_ = work_dir_ + "/pgmux.log";
  if (!write_text(config_path_, fill_placeholders(config))) {
    return ::testing::AssertionFailure() << "cannot write " << config_path_;
  }

  // Everything the child needs is built before fork(): only async-signal-safe calls
  // may run between fork() and exec in a process that may have threads.
  std::vector<std::string> args = {binary, "--config", config_path_};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = options.env;
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);  // later duplicates lose: glibc getenv takes the first match
  }
  envp.push_back(nullptr);

  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    return ::testing::AssertionFailure() << "cannot open " << log_path_;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // If the test binary dies (crash, ctest timeout), pgmux must not outlive it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    constexpr char kMsg[] = "PgmuxProcess: execve failed\n";
    [[maybe_unused]] auto ignored = ::write(2, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) {
    return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
  }
  pid_ = pid;
  exit_status_ = -1;

  const auto deadline = Clock::now() + options.ready_timeout;
  while (Clock::now() < deadline) {
    if (try_reap(false)) {
      return ::testing::AssertionFailure()
             << "pgmux exited with status " << exit_status_ << " before accepting connections on "
             << port_ << "; log " << log_path_ << ":\n"
             << log_tail();
    }
    if (port_accepts(port_)) {
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int status = stop(std::chrono::seconds(2));
  return ::testing::AssertionFailure()
         << "pgmux did not accept connections on 127.0.0.1:" << port_ << " within "
         << options.ready_timeout.count() << " ms (stopped, status " << status << "); log "
         << log_path_ << ":\n"
         << log_tail();
}

PgmuxProcess::~PgmuxProcess() {
  if (pid_ <= 0) {
    return;
  }
  const bool was_running = exit_status_ < 0;
  const int status = stop();
  if (was_running && status != 0) {
    // Catches sanitizer reports and crashes at shutdown that the test did not look at.
    ADD_FAILURE() << "pgmux (pid " << pid_ << ") exited with status " << status
                  << " on SIGTERM at the end of the test; log " << log_path_ << ":\n"
                  << log_tail(60);
  } else if (::testing::Test::HasFailure()) {
    std::fprintf(stderr, "--- pgmux log %s (last lines) ---\n%s\n---\n", log_path_.c_str(),
                 log_tail(60).c_str());
  }
  const char* keep = std::getenv("PGMUX_KEEP_LOGS");
  const bool keep_logs = (keep != nullptr && *keep != '\0') || ::testing::Test::HasFailure();
  if (!keep_logs && !work_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(work_dir_, ignored);
  }
}

bool PgmuxProcess::try_reap(bool block) {
  if (pid_ <= 0) {
    return false;
  }
  if (exit_status_ >= 0) {
    return true;
  }
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_status_ = decode_status(status);
    return true;
  }
  return false;
}

bool PgmuxProcess::running() {
  return pid_ > 0 && !try_reap(false);
}

std::string PgmuxProcess::log_text() const {
  return log_path_.empty() ? std::string() : read_file(log_path_);
}

std::string PgmuxProcess::log_tail(int lines) const {
  const std::string text = log_text();
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') {
    --pos;
  }
  for (int n = 0; n < lines && pos != std::string::npos && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

void PgmuxProcess::rewrite_config(std::string_view config) {
  // Write then rename, so pgmux never reads a half-written file.
  const std::string tmp = config_path_ + ".tmp";
  if (write_text(tmp, fill_placeholders(config))) {
    std::filesystem::rename(tmp, config_path_);
  } else {
    ADD_FAILURE() << "cannot write " << tmp;
  }
}

bool PgmuxProcess::signal(int sig) {
  return running() && ::kill(pid_, sig) == 0;
}

int PgmuxProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!try_reap(false)) {
    if (pid_ <= 0 || Clock::now() >= deadline) {
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_status_;
}

int PgmuxProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return -1;
  }
  if (try_reap(false)) {
    return exit_status_;
  }
  ::kill(pid_, SIGTERM);
  if (wait_exit(timeout) >= 0) {
    return exit_status_;
  }
  std::fprintf(stderr, "PgmuxProcess: pid %d ignored SIGTERM for %lld ms; sending SIGKILL\n",
               static_cast<int>(pid_), static_cast<long long>(timeout.count()));
  ::kill(pid_, SIGKILL);
  try_reap(true);
  return exit_status_;
}

long PgmuxProcess::rss_kb() const {
  if (pid_ <= 0) {
    return -1;
  }
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::strtol(line.c_str() + 6, nullptr, 10);
    }
  }
  return -1;
}

std::string PgmuxProcess::conninfo(std::string_view user, std::string_view password,
                                   std::string_view dbname) const {
  return make_conninfo({{"host", "127.0.0.1"},
                        {"port", std::to_string(port_)},
                        {"user", std::string(user)},
                        {"password", std::string(password)},
                        {"dbname", std::string(dbname)},
                        {"sslmode", "disable"},
                        {"gssencmode", "disable"},
                        {"connect_timeout", "10"}});
}

}  // namespace pooler::integration
