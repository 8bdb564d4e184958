#include "pooler/admin/admin_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>
#include <vector>

#include "pooler/admin/gather.h"
#include "pooler/admin/show_advice.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::admin {
namespace {

namespace ss = wire::sqlstate;
constexpr std::string_view kSyntaxError = "42601";

// The words of a command, lower-cased, without a trailing ';'.
std::vector<std::string> words(std::string_view sql) {
  std::string text(sql);
  while (!text.empty() &&
         (std::isspace(static_cast<unsigned char>(text.back())) != 0 || text.back() == ';')) {
    text.pop_back();
  }
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) {
    out.push_back(std::move(w));
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Database names may be quoted ("My Db"); unquoted ones keep their case, as PgBouncer does.
std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    return s.substr(1, s.size() - 2);
  }
  return s;
}

std::uint64_t wall_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

void encode_table(const Table& table, wire::WriteBuffer& out) {
  {
    auto m = out.begin_message('T');  // RowDescription (B)
    m.i16(static_cast<std::int16_t>(table.columns.size()));
    for (const auto& c : table.columns) {
      m.cstring(c.name);
      m.i32(0);  // table oid
      m.i16(0);  // attribute number
      m.u32(c.type_oid);
      m.i16(c.type_oid == kInt8Oid ? 8 : -1);
      m.i32(-1);  // type modifier
      m.i16(0);   // text format
    }
  }
  for (const auto& row : table.rows) {
    auto m = out.begin_message('D');  // DataRow (B)
    m.i16(static_cast<std::int16_t>(row.size()));
    for (const auto& value : row) {
      if (!value) {
        m.i32(-1);
        continue;
      }
      m.i32(static_cast<std::int32_t>(value->size()));
      m.bytes(std::string_view(*value));
    }
  }
}

AdminSession::AdminSession(client::ClientSession& session, client::SessionHost& host,
                           Control& control)
    : session_(session), host_(host), control_(control) {}

void AdminSession::on_query(std::string_view sql) {
  queued_.emplace_back(sql);
  if (!busy_) {
    run_next();
  }
}

void AdminSession::run_next() {
  while (!busy_ && !queued_.empty()) {
    const std::string sql = std::move(queued_.front());
    queued_.pop_front();
    run(sql);
  }
}

void AdminSession::run(const std::string& sql) {
  const auto w = words(sql);
  if (w.empty()) {
    wire::WriteBuffer out;
    { auto m = out.begin_message('I'); }  // EmptyQueryResponse (B): no body
    wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
    session_.admin_write(out.data());
    return;
  }
  const std::string verb = lower(w[0]);
  const std::string arg = w.size() > 1 ? unquote(w[1]) : std::string();
  spdlog::info("admin {}: {}", session_.user(), sql);
  if (verb == "show") {
    const std::string what = lower(arg);
    if (w.size() == 2 && (what == "queries" || what == "index_advice")) {
      show_advice(what);
      return;
    }
    if (w.size() != 2 || !show_known(what)) {
      send_error(kSyntaxError, "unknown SHOW command: " + sql);
      return;
    }
    if (!show_needs_snapshots(what)) {
      finish_show(what, {});
      return;
    }
    busy_ = true;
    gather(control_, host_.loop(), alive_, [this, what](Snapshots snaps) {
      finish_show(what, snaps);
      busy_ = false;
      run_next();
    });
    return;
  }
  if (w.size() > 2) {
    send_error(kSyntaxError, "too many arguments: " + sql);
    return;
  }
  if (verb == "reload" && w.size() == 1) {
    control_.reload();
    send_command_complete("RELOAD");
  } else if (verb == "shutdown" && w.size() == 1) {
    send_command_complete("SHUTDOWN");
    control_.shutdown();
  } else if (verb == "suspend" && w.size() == 1) {
    // As PgBouncer: every socket stops being read, and the answer comes once everything
    // queued has been written (at most 30 s). RESUME undoes it.
    for_each_worker(control_, [](WorkerControl& wc) { wc.set_suspended(true); });
    busy_ = true;
    flush_deadline_ms_ = net::now_ms(host_.loop()) + 30'000;
    wait_until_flushed();
  } else if (verb == "pause" || verb == "resume") {
    if (!check_database(arg)) {
      return;
    }
    const bool pause = verb == "pause";
    for_each_worker(control_, [arg, pause](WorkerControl& wc) {
      wc.set_paused(arg, pause);
      if (!pause && arg.empty()) {
        wc.set_suspended(false);  // RESUME also ends a SUSPEND
      }
    });
    send_command_complete(pause ? "PAUSE" : "RESUME");
  } else if (verb == "kill") {
    if (!check_database(arg)) {
      return;
    }
    for_each_worker(control_, [arg](WorkerControl& wc) { wc.kill(arg); });
    send_command_complete("KILL");
  } else if (verb == "reconnect") {
    if (!check_database(arg)) {
      return;
    }
    for_each_worker(control_, [arg](WorkerControl& wc) { wc.reconnect(arg); });
    send_command_complete("RECONNECT");
  } else {
    send_error(kSyntaxError, "unknown admin command: " + sql);
  }
}

// pgmux's own SHOW QUERIES and SHOW INDEX_ADVICE (show_advice.h).
void AdminSession::show_advice(const std::string& what) {
  busy_ = true;
  gather_each<std::vector<advice::ShapeRow>>(
      control_, host_.loop(), alive_, [](WorkerControl& w) { return w.shapes(); },
      [this, what](std::vector<std::vector<advice::ShapeRow>> rows) {
        const auto shapes = merge_shapes(rows);
        if (what == "index_advice") {
          auto records = control_.advice_store().records();
          overlay_live_counts(records, shapes);
          send_table(show_index_advice(records));
        } else {
          send_table(show_queries(shapes));
        }
        busy_ = false;
        run_next();
      });
}

void AdminSession::wait_until_flushed() {
  gather_each<std::size_t>(
      control_, host_.loop(), alive_, [](WorkerControl& w) { return w.unflushed_bytes(); },
      [this](std::vector<std::size_t> queued) {
        std::size_t total = 0;
        for (const std::size_t n : queued) {
          total += n;
        }
        if (total == 0 || net::now_ms(host_.loop()) >= flush_deadline_ms_) {
          if (total == 0) {
            send_command_complete("SUSPEND");
          } else {
            send_error(ss::kQueryCanceled, "SUSPEND: " + std::to_string(total) +
                                               " bytes still unwritten after 30 s; "
                                               "sockets stay suspended until RESUME");
          }
          busy_ = false;
          run_next();
          return;
        }
        if (!flush_timer_) {
          flush_timer_ = std::make_unique<net::Timer>(host_.loop(), [this] { wait_until_flushed(); });
        }
        flush_timer_->start(std::chrono::milliseconds(10));
      });
}

bool AdminSession::check_database(const std::string& db) {
  if (db.empty() || host_.config().find_database(db) != nullptr) {
    return true;
  }
  send_error(ss::kInvalidCatalogName, "no such database: " + db);
  return false;
}

void AdminSession::finish_show(std::string_view what, const Snapshots& snapshots) {
  const auto config = host_.config_snapshot();
  ShowContext ctx;
  ctx.config = config.get();
  ctx.wall_now_ms = wall_now_ms();
  auto table = show(what, snapshots, ctx);
  if (!table) {
    send_error(kSyntaxError, "unknown SHOW command");
    return;
  }
  send_table(*table);
}

void AdminSession::send_table(const Table& table) {
  wire::WriteBuffer out;
  encode_table(table, out);
  wire::encode(wire::CommandComplete{"SHOW"}, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  session_.admin_write(out.data());
}

void AdminSession::send_command_complete(std::string_view tag) {
  wire::WriteBuffer out;
  wire::encode(wire::CommandComplete{tag}, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  session_.admin_write(out.data());
}

void AdminSession::send_error(std::string_view sqlstate, const std::string& message) {
  wire::WriteBuffer out;
  wire::ErrorResponse err;
  err.severity = "ERROR";
  err.sqlstate = std::string(sqlstate);
  err.message = message;
  wire::encode(err, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  session_.admin_write(out.data());
}

}  // namespace pooler::admin
