// main() of every integration test binary (library pgmux_integration_main): registers
// the one PostgresEnvironment of the binary, then runs its tests.

#include <gtest/gtest.h>

#include <csignal>

#include "tests/integration/postgres_environment.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // A test that writes to a socket pgmux has closed must see EPIPE, not die.
  std::signal(SIGPIPE, SIG_IGN);
  // gtest owns and deletes the environment.
  ::testing::AddGlobalTestEnvironment(new pooler::integration::PostgresEnvironment());
  return RUN_ALL_TESTS();
}
