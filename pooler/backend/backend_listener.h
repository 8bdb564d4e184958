#pragma once
// What a leased backend reports to the client session it serves. Loop thread only.

#include <cstdint>
#include <span>
#include <string_view>

#include "pooler/base/result.h"

namespace pooler::backend {

class BackendListener {
 public:
  // Reply bytes for the client, in order.
  virtual void on_backend_data(std::span<const std::byte> bytes) = 0;
  // A ReadyForQuery ended a Sync or Query: the client's own (`visible`), or one pgmux
  // injected. Either way the backend may now be releasable.
  virtual void on_backend_ready(bool visible) = 0;
  // PostgreSQL accepted a Parse of registry statement `id`.
  virtual void on_statement_prepared(std::uint64_t id) = 0;
  // The first column of the last row of a probe query (see ClientSession::probe_pins).
  virtual void on_probe_result(std::string_view value) = 0;
  // The outcome of the client's own named Parse, in order (false: refused or skipped).
  virtual void on_client_parse_done(bool ok) = 0;
  // CommandComplete of a client's statement (tags such as "SET", "COMMIT").
  virtual void on_backend_command_complete(std::string_view tag) = 0;
  // An ErrorResponse from PostgreSQL on its way to the client (for error counts).
  virtual void on_backend_error(std::string_view /*sqlstate*/) {}
  // A statement pgmux injected for this client failed (e.g. applying its settings).
  virtual void on_backend_hidden_error(std::string_view message, std::string_view sqlstate) = 0;
  // A statement's cached plan changed result type after DDL (pgmux has already closed it on
  // this backend). True if the listener sends the failed request again, in which case the
  // error is not shown; only asked when nothing of that request reached the client yet.
  virtual bool on_plan_changed() { return false; }
  // The server refused a statement as a write in a read-only transaction (SQLSTATE 25006)
  // on a replica, before anything of the request reached the client. True if the listener
  // runs the request again on the primary, in which case the error is not shown.
  virtual bool on_read_only_violation() { return false; }
  // The backend's write queue drained: the client may be read again.
  virtual void on_backend_writable() {}
  // The backend connection is gone; the client must not wait for more replies.
  virtual void on_backend_lost(const Error& error) = 0;

 protected:
  ~BackendListener() = default;
};

}  // namespace pooler::backend
