#pragma once
// systemd's readiness protocol (sd_notify(3)) without linking libsystemd: one datagram of
// "KEY=VALUE" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET. When the variable
// is unset (not started by systemd as Type=notify, or a test) nothing is sent. Any thread.

#include <string>
#include <string_view>

#include "pooler/base/result.h"

namespace pooler::app {

// Sends `state`, e.g. "READY=1" or "STOPPING=1". An error says why (bad address, send
// failed); callers log it and carry on: a lost notification is for systemd's timeouts to
// report, it is no reason to stop serving.
[[nodiscard]] Result<void> notify_systemd(std::string_view state);

// "RELOADING=1" with the MONOTONIC_USEC= that systemd 253+ wants next to it (the time the
// reload started, so it can tell this reload from an earlier one).
std::string reloading_state();

}  // namespace pooler::app
