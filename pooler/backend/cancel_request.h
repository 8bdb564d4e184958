#pragma once
// Sends one CancelRequest to a PostgreSQL server on a fresh connection, then goes away.
// Fire and forget: the object owns itself and is deleted through the loop's deferred
// deletion once the server closes the connection. Loop thread only.

#include <cstdint>

#include "pooler/config/config.h"
#include "pooler/net/loop.h"

namespace pooler::backend {

void send_cancel_request(net::Loop& loop, const config::HostPort& address, std::int32_t pid,
                         std::int32_t secret);

}  // namespace pooler::backend
