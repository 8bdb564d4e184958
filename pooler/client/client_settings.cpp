// ClientSession: the settings that follow a client from backend to backend, and the probes
// that read back from the server what the text of a query cannot tell.

#include "pooler/client/client_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "pooler/client/client_session_util.h"
#include "pooler/net/timer.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/sqlstate.h"

namespace pooler::client {

using namespace session_util;

// Brings the backend to this client's settings before its first request runs.
void ClientSession::sync_settings() {
  if (backend_->settings_hash == settings_->hash) {
    return;
  }
  std::string sql = "RESET ALL";
  if (!settings_->items.empty()) {
    std::string selects;
    std::string sets;
    for (const auto& [name, stmt] : settings_->items) {
      if (stmt.starts_with("set_config(")) {
        selects += selects.empty() ? "; SELECT " : ", ";
        selects += stmt;
      } else {
        sets += "; ";
        sets += stmt;
      }
    }
    sql += selects;
    sql += sets;
  }
  wire::WriteBuffer& out = host_.scratch();
  out.clear();
  wire::encode(wire::Query{sql}, out);
  backend_->expected().expect_hidden(backend::Reply::Query);
  backend_->send(out.data());
  backend_->settings_hash = settings_->hash;
  ++host_.counters().settings_syncs;
}

// A pinned client's transaction ended: ask the backend whether what pinned it is still
// there (the temporary table may have been dropped, the channel unlistened, the lock
// released or never taken), so the client is unpinned as soon as it can be.
void ClientSession::probe_pins() {
  static constexpr std::string_view kProbe =
      "SELECT (SELECT count(*) FROM pg_listening_channels())"
      " + (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
      " + (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())"
      " + (SELECT count(*) FROM pg_cursors WHERE is_holdable)"
      " + (SELECT count(*) FROM pg_prepared_statements WHERE name NOT LIKE 'pgmux\\_%')";
  send_probe(kProbe, Probe::Pins);
}

// The session's settings as the server has them, after something changed them that pgmux
// could not follow from the text: they become the settings that follow the client.
void ClientSession::probe_settings() {
  static constexpr std::string_view kProbe =
      "SELECT 'ok:' || coalesce(string_agg(name || chr(30) || format('set_config(%L, %L, false)', "
      "name, setting), chr(31) ORDER BY name), '') FROM pg_settings WHERE source = 'session'";
  send_probe(kProbe, Probe::Settings);
}

void ClientSession::send_probe(std::string_view sql, Probe kind) {
  wire::WriteBuffer out;
  wire::encode(wire::Query{sql}, out);
  backend::HiddenOptions options;
  options.probe = true;
  options.tolerate_error = true;
  backend_->expected().expect_hidden(backend::Reply::Query, 0, options);
  backend_->send(out.data());
  probes_ = static_cast<std::uint8_t>(probes_ | (static_cast<unsigned>(kind) << (2 * probe_count_)));
  ++probe_count_;
}

void ClientSession::on_probe_result(std::string_view value) {
  if (probe_count_ == 0) {
    return;
  }
  const auto kind = static_cast<Probe>(probes_ & 3);
  probes_ = static_cast<std::uint8_t>(probes_ >> 2);
  --probe_count_;
  if (kind == Probe::Pins) {
    if (value == "0" && pins_ != 0) {
      SPDLOG_DEBUG("client {}: unpinned ({} no longer held)", id_, to_string_pins(pins_));
      pins_ = 0;
    }
    return;
  }
  if (!value.starts_with("ok:")) {
    // The probe failed: nothing is known of this backend's settings.
    if (backend_ != nullptr) {
      backend_->settings_hash = backend::kSettingsUnknown;
    }
    return;
  }
  value.remove_prefix(3);
  auto next = std::make_shared<SessionSettings>();
  next->startup = startup_settings();
  next->reported = next->startup->reported;
  while (!value.empty()) {
    const auto end = value.find('\x1f');
    const std::string_view item = value.substr(0, end);
    if (const auto sep = item.find('\x1e'); sep != std::string_view::npos) {
      next->items.emplace_back(std::string(item.substr(0, sep)), std::string(item.substr(sep + 1)));
    }
    value = end == std::string_view::npos ? std::string_view() : value.substr(end + 1);
  }
  std::sort(next->items.begin(), next->items.end());
  next->hash = hash_settings(next->items);
  settings_ = std::move(next);
  if (backend_ != nullptr) {
    backend_->settings_hash = settings_->hash;
  }
}

void ClientSession::reset_settings() { settings_ = startup_settings(); }

void ClientSession::apply_setting(const QueryScan& scan) {
  switch (scan.effect) {
    case SessionEffect::Set: {
      auto next = derive_settings();
      upsert(next->items, scan.name, scan.statement);
      std::sort(next->items.begin(), next->items.end());
      next->hash = hash_settings(next->items);
      settings_ = std::move(next);
      if (backend_ != nullptr) {
        backend_->settings_hash = settings_->hash;  // it ran the SET itself
      }
      return;
    }
    case SessionEffect::Reset: {
      auto next = derive_settings();
      std::erase_if(next->items, [&](const auto& s) { return s.first == scan.name; });
      for (const auto& s : next->startup->items) {
        if (s.first == scan.name) {
          upsert(next->items, s.first, s.second);
        }
      }
      std::sort(next->items.begin(), next->items.end());
      next->hash = hash_settings(next->items);
      settings_ = std::move(next);
      break;
    }
    case SessionEffect::ResetAll:
      reset_settings();
      break;
    case SessionEffect::DiscardAll:
      // It ran on this backend (pinned client): the backend dropped its own state.
      reset_settings();
      pins_ = 0;
      return;
    case SessionEffect::DeallocateAll:
    case SessionEffect::Deallocate:
    case SessionEffect::SqlPrepare:
    case SessionEffect::SqlExecute:
    case SessionEffect::None: return;
  }
  // The RESET ran on this backend, followed by pgmux's restore of the startup values.
  if (backend_ != nullptr) {
    backend_->settings_hash = renames_statements() ? settings_->hash : backend::kSettingsUnknown;
  }
}


}  // namespace pooler::client
