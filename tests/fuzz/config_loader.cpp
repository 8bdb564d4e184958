// libFuzzer target: the config loader (pooler/config) on arbitrary bytes. Errors must come
// back as Errc::Config, never as an exception or a crash. A config that loads has its [[hba]]
// rules matched against a few logins; the whole input is also tried as an hba network.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pooler/config/config.h"
#include "pooler/config/config_loader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pooler::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto config = load_config_string(text, "fuzz.toml");
  if (!config) {
    FUZZ_CHECK(config.error().code == pooler::Errc::Config);
    FUZZ_CHECK(!config.error().message.empty());
  } else {
    for (const std::string_view address : {"10.1.2.3", "::1", "fd00::1", "", "not an address"}) {
      const HbaRule* rule = match_hba(config->hba, "app", "app", address);
      FUZZ_CHECK(rule == nullptr || (rule->index >= 1 &&
                                     static_cast<std::size_t>(rule->index) <= config->hba.size()));
    }
  }
  if (const auto network = parse_network(text)) {
    FUZZ_CHECK(network->prefix >= 0 && network->prefix <= 128);
  }
  return 0;
}
