// pgmux: a PostgreSQL connection pooler and query router.
// Arguments -> Config -> App::run(). The only top-level catch.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pooler/app/app.h"
#include "pooler/app/import_pgbouncer.h"
#include "pooler/app/tls_setup.h"
#include "pooler/base/log.h"
#include "pooler/config/config_loader.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: pgmux --config FILE
       pgmux --check-config FILE
       pgmux --version | --help
       pgmux import-pgbouncer PGBOUNCER.INI [USERLIST.TXT]

pgmux is a PostgreSQL connection pooler and query router. It runs in the
foreground, logs to stderr, reloads its configuration on SIGHUP, drains and
exits 0 on SIGTERM (a second SIGTERM stops at once), and stops at once on SIGINT.

Options:
  -c, --config FILE        run with the TOML configuration in FILE
      --check-config FILE  validate FILE, print what is wrong, exit 0 if it is valid
  -V, --version            print the version and exit
  -h, --help               print this help and exit
  import-pgbouncer PGBOUNCER.INI [USERLIST.TXT]
                           print the pgmux TOML equivalent of a PgBouncer
                           configuration (and its auth_file); settings that
                           cannot be carried over are listed on stderr

Exit status: 0 on a clean stop, 1 on a runtime failure (such as a port already
in use), 2 on a bad command line or configuration.

Example configuration: /etc/pgmux/pgmux.toml (etc/pgmux.toml in the sources).
)";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "pgmux: %s\n\n%s", message.c_str(), kUsage.data());
  return 2;
}

std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "pgmux: cannot read %s: %s\n", path, std::strerror(errno));
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// pgmux import-pgbouncer PGBOUNCER.INI [USERLIST.TXT]: TOML on stdout, notes on stderr.
int import_pgbouncer_command(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    return usage_error("import-pgbouncer needs PGBOUNCER.INI and optionally USERLIST.TXT");
  }
  const auto ini = read_file(argv[2]);
  std::optional<std::string> userlist;
  if (argc == 4) {
    userlist = read_file(argv[3]);
    if (!userlist) return 2;
  }
  if (!ini) return 2;
  auto imported = pooler::app::import_pgbouncer(
      *ini, userlist ? std::optional<std::string_view>(*userlist) : std::nullopt);
  if (!imported) {
    std::fprintf(stderr, "pgmux: %s\n", imported.error().message.c_str());
    return 2;
  }
  std::fputs(imported->toml.c_str(), stdout);
  for (const auto& note : imported->not_carried_over) {
    std::fprintf(stderr, "pgmux: not carried over: %s\n", note.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "import-pgbouncer") {
    return import_pgbouncer_command(argc, argv);
  }
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    }
    if (arg == "-V" || arg == "--version") {
      std::printf("pgmux %s\n", PGMUX_VERSION);
      return 0;
    }
    if (arg == "-c" || arg == "--config" || arg == "--check-config") {
      if (i + 1 >= argc) {
        return usage_error(std::string(arg) + " needs a FILE");
      }
      check_only = arg == "--check-config";
      config_path = argv[++i];
      continue;
    }
    if (arg.starts_with("--config=")) {
      config_path = std::string(arg.substr(9));
      continue;
    }
    return usage_error("unknown argument '" + std::string(arg) + "'");
  }
  if (config_path.empty()) {
    return usage_error("no configuration file given (--config FILE)");
  }
  try {
    auto loaded = pooler::config::load_config_file(config_path);
    if (!loaded) {
      std::fprintf(stderr, "pgmux: invalid configuration:\n%s\n", loaded.error().message.c_str());
      return 2;
    }
    // Certificates and keys are read now, so that a bad file is a configuration error.
    if (auto tls = pooler::app::build_tls(*loaded); !tls) {
      std::fprintf(stderr, "pgmux: invalid configuration:\n%s: %s\n", config_path.c_str(),
                   tls.error().message.c_str());
      return 2;
    }
    if (check_only) {
      std::printf("%s: configuration is valid\n", config_path.c_str());
      return 0;
    }
    spdlog::level::level_enum level = spdlog::level::info;
    pooler::log::parse_level(loaded->general.log_level, level);
    pooler::log::setup(loaded->general.log_format == pooler::config::LogFormat::Json
                           ? pooler::log::Format::Json
                           : pooler::log::Format::Text,
                       level);
    auto config = std::make_shared<const pooler::config::Config>(std::move(*loaded));
    pooler::app::App app(config, config_path);
    if (auto ok = app.bind(); !ok) {
      spdlog::critical("{}", ok.error().message);
      return 1;
    }
    return app.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pgmux: fatal: %s\n", e.what());
    return 1;
  }
}
