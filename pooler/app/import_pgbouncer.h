#pragma once
// `pgmux import-pgbouncer pgbouncer.ini [userlist.txt]`: turns a PgBouncer configuration
// into the equivalent pgmux TOML. Pure text in, text out; the command line reads the files.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pooler/base/result.h"

namespace pooler::app {

struct ImportResult {
  std::string toml;                           // a pgmux.toml that pgmux's loader accepts
  std::vector<std::string> not_carried_over;  // one line per setting left behind, with why
};

// `ini_text` is the content of pgbouncer.ini (no %include is followed: each one is named
// in not_carried_over), `userlist_text` that of its auth_file. Fails (Errc::Config, with
// the line number) only on text that is not an ini file or a connection string that
// cannot be read; settings pgmux has no equivalent for are reported, not errors.
[[nodiscard]] Result<ImportResult> import_pgbouncer(std::string_view ini_text,
                                                    std::optional<std::string_view> userlist_text);

}  // namespace pooler::app
