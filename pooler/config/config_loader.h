#pragma once
// Reads pgmux.toml into a validated Config. Startup and reload only (never on the loop).
// Nothing throws out of here: TOML syntax errors and invalid settings both come back as
// Errc::Config, one line per problem, each as "FILE:LINE:COL: what is wrong", in file order.

#include <string>
#include <string_view>

#include "pooler/base/result.h"
#include "pooler/config/config.h"

namespace pooler::config {

// Reads and validates the file at `path`. An unreadable file gives
// "FILE: cannot read: <strerror>".
[[nodiscard]] Result<Config> load_config_file(const std::string& path);

// Same, from text already in memory; `source_name` stands for the file name in messages
// and in Config::source_path.
[[nodiscard]] Result<Config> load_config_string(std::string_view toml_text,
                                                std::string_view source_name);

}  // namespace pooler::config
