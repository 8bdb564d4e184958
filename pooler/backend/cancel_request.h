#pragma once
// Sends one CancelRequest to a PostgreSQL server on a fresh connection, then goes away.
// Fire and forget: the object owns itself and is deleted through the loop's deferred
// deletion once the server closes the connection. Loop thread only.

#include <cstdint>
#include <functional>

#include "pooler/config/config.h"
#include "pooler/net/loop.h"

namespace pooler::backend {

// `on_done` runs (on the loop) once the server has taken the request (it closes the
// connection after signalling the backend) or the attempt failed.
void send_cancel_request(net::Loop& loop, const config::HostPort& address, std::int32_t pid,
                         std::int32_t secret, std::function<void()> on_done = {});

}  // namespace pooler::backend
