#pragma once
// The admin console for one client of the virtual database "pgmux" (or "pgbouncer"):
// parses its simple Queries, runs SHOW and the control commands, and answers with
// RowDescription/DataRow/CommandComplete/ReadyForQuery. Owned by its ClientSession;
// loop thread of that session only.

#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "pooler/admin/control.h"
#include "pooler/admin/show.h"
#include "pooler/client/client_session.h"
#include "pooler/net/timer.h"

namespace pooler::admin {

class AdminSession final : public client::AdminHandler {
 public:
  AdminSession(client::ClientSession& session, client::SessionHost& host, Control& control);

  void on_query(std::string_view sql) override;

 private:
  void run_next();
  void run(const std::string& sql);
  void finish_show(std::string_view what, const Snapshots& snapshots);
  void send_table(const Table& table);
  void send_command_complete(std::string_view tag);
  void send_error(std::string_view sqlstate, const std::string& message);
  // Runs a per-database command on every worker; false (error sent) if `db` is unknown.
  bool check_database(const std::string& db);
  void show_advice(const std::string& what);
  // SUSPEND: answers once every worker has written out what it had queued.
  void wait_until_flushed();

  client::ClientSession& session_;
  client::SessionHost& host_;
  Control& control_;
  std::deque<std::string> queued_;  // queries that arrived while one was in progress
  bool busy_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
  std::unique_ptr<net::Timer> flush_timer_;
  std::uint64_t flush_deadline_ms_ = 0;
};

// The wire encoding of a result set: RowDescription, then one DataRow per row (all text).
void encode_table(const Table& table, wire::WriteBuffer& out);

}  // namespace pooler::admin
