#pragma once
// The TLS contexts a configuration asks for, loaded from its certificate files. Called at
// startup (a bad file stops pgmux with exit status 2) and on each SIGHUP (a bad file keeps
// the running configuration), so new connections use new certificates and open ones keep
// theirs.

#include <memory>

#include "pooler/base/result.h"
#include "pooler/config/config.h"
#include "pooler/net/tls_context.h"

namespace pooler::app {

[[nodiscard]] Result<std::shared_ptr<const net::TlsSetup>> build_tls(const config::Config& config);

}  // namespace pooler::app
