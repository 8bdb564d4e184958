// The Debian package builds from the built pgmux, installs into a throwaway root with
// dpkg, and its binary runs. The checks are in packaging_test.sh (runnable on its own);
// this wraps it for CTest (label integration). No PostgreSQL needed.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;

// build/tests/integration/<this test> -> build/pooler/pgmux, unless PGMUX_BINARY says.
fs::path pgmux_binary() {
  if (const char* env = std::getenv("PGMUX_BINARY"); env != nullptr && *env != '\0') return env;
  return fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() / "pooler" / "pgmux";
}

TEST(Packaging, DebBuildsInstallsAndRuns) {
  const fs::path script = fs::path(__FILE__).parent_path() / "packaging_test.sh";
  ASSERT_TRUE(fs::exists(script)) << script;
  const fs::path binary = pgmux_binary();
  ASSERT_TRUE(fs::exists(binary)) << binary << " (set PGMUX_BINARY)";
  const std::string command = "bash '" + script.string() + "' '" + binary.string() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = ::pclose(pipe);
  std::fputs(output.c_str(), stdout);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
}

}  // namespace
