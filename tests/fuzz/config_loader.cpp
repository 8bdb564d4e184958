// libFuzzer target: the config loader (pooler/config) on arbitrary bytes. Errors must come
// back as Errc::Config, never as an exception or a crash.

#include "pooler/config/config_loader.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto config = pooler::config::load_config_string(text, "fuzz.toml");
  if (!config) {
    FUZZ_CHECK(config.error().code == pooler::Errc::Config);
    FUZZ_CHECK(!config.error().message.empty());
  }
  return 0;
}
