#pragma once
// A cheap look at a query's text for what pgmux itself must track under transaction
// pooling: session settings (SET/RESET), state that pins a client to its backend (LISTEN,
// advisory locks, temporary tables, WITH HOLD cursors, SQL PREPARE), and commands pgmux
// answers itself (DISCARD ALL, DEALLOCATE). No SQL parser: keywords only, erring on the
// side of pinning.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pooler::client {

enum class SessionEffect : std::uint8_t {
  None,
  Set,            // SET name ... (session level): `name`, `statement` to replay
  Reset,          // RESET name
  ResetAll,       // RESET ALL
  DiscardAll,     // DISCARD ALL
  DeallocateAll,  // DEALLOCATE [PREPARE] ALL
  Deallocate,     // DEALLOCATE [PREPARE] name
  SqlPrepare,     // PREPARE name rest: `name`, `statement` = rest ("(int) AS SELECT ...")
  SqlExecute,     // EXECUTE name rest: `name`, `statement` = rest ("(1, 'x')")
};

// Why a client keeps its backend between transactions (bits).
enum PinReason : std::uint8_t {
  kPinListen = 1,
  kPinAdvisoryLock = 2,
  kPinTempTable = 4,
  kPinHoldCursor = 8,
  kPinSqlPrepare = 16,
};

struct QueryScan {
  SessionEffect effect = SessionEffect::None;
  std::string name;       // setting name (lower case) or statement name
  std::string statement;  // for Set: the statement to replay on another backend
  std::uint8_t pins = 0;    // reasons this query pins
  std::uint8_t unpins = 0;  // reasons this query undoes (UNLISTEN *, pg_advisory_unlock_all() ...)
  bool untracked_settings = false;  // may change settings in a way not described by `effect`
};

QueryScan scan_query(std::string_view sql);

// Pin reasons of a statement text sent with Parse (extended protocol).
std::uint8_t scan_pins(std::string_view sql);

std::string_view to_string_pins(std::uint8_t pins);

}  // namespace pooler::client
