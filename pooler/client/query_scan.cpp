#include "pooler/client/query_scan.h"

#include <algorithm>
#include <cctype>

namespace pooler::client {
namespace {

// Keywords and identifiers of one statement, skipping blanks and comments (block comments
// nest, as in PostgreSQL).
class Words {
 public:
  explicit Words(std::string_view s) : s_(s) {}

  // Skips blanks and comments; false at the end.
  bool skip_space() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '-' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '-') {
        while (pos_ < s_.size() && s_[pos_] != '\n') {
          ++pos_;
        }
      } else if (c == '/' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '*') {
        skip_block_comment();
      } else {
        return true;
      }
    }
    return false;
  }

  // The next keyword or identifier, lower-cased; "" if the next token is not a word.
  std::string word() {
    if (!skip_space()) {
      return {};
    }
    std::string w;
    if (s_[pos_] == '"') {  // quoted identifier: kept as written
      const auto end = s_.find('"', pos_ + 1);
      if (end == std::string_view::npos) {
        return {};
      }
      w.assign(s_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
      return w;
    }
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$') {
        w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        ++pos_;
      } else {
        break;
      }
    }
    return w;
  }

  // Like word(), but steps over one non-word character instead of stopping there.
  std::string next_token() {
    std::string w = word();
    if (w.empty() && pos_ < s_.size()) {
      ++pos_;
    }
    return w;
  }

  bool at_end() { return !skip_space(); }
  std::size_t pos() const { return pos_; }

 private:
  void skip_block_comment() {
    int depth = 0;
    while (pos_ + 1 < s_.size()) {
      if (s_[pos_] == '/' && s_[pos_ + 1] == '*') {
        ++depth;
        pos_ += 2;
      } else if (s_[pos_] == '*' && s_[pos_ + 1] == '/') {
        pos_ += 2;
        if (--depth == 0) {
          return;
        }
      } else {
        ++pos_;
      }
    }
    pos_ = s_.size();
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

bool icontains(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         }) != hay.end();
}

std::string_view trim_statement(std::string_view sql) {
  while (!sql.empty() &&
         (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) {
    sql.remove_suffix(1);
  }
  while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front()))) {
    sql.remove_prefix(1);
  }
  return sql;
}

// The statements of a query split at ';'. Literals that contain ';' split wrongly, which
// only makes pgmux more careful (the query is then not tracked, and may pin).
std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= sql.size()) {
    const auto semi = sql.find(';', start);
    const auto piece = trim_statement(sql.substr(start, semi == std::string_view::npos
                                                            ? std::string_view::npos
                                                            : semi - start));
    if (!piece.empty()) {
      out.push_back(piece);
    }
    if (semi == std::string_view::npos) {
      break;
    }
    start = semi + 1;
  }
  return out;
}

// Advisory locks can be taken from anywhere in a statement.
std::uint8_t advisory_effect(std::string_view sql, std::uint8_t& unpins) {
  if (!icontains(sql, "advisory_")) {
    return 0;
  }
  if (icontains(sql, "advisory_unlock_all")) {
    unpins |= kPinAdvisoryLock;
  }
  // pg_advisory_lock, pg_try_advisory_lock, *_shared; not the _xact_ variants.
  if (icontains(sql, "pg_advisory_lock") || icontains(sql, "pg_try_advisory_lock")) {
    return kPinAdvisoryLock;
  }
  return 0;
}

// SELECT ... INTO [TEMP | TEMPORARY] [TABLE] name: a temporary table from a SELECT.
bool selects_into_temp(std::string_view sql) {
  Words w(sql);
  std::string prev;
  while (!w.at_end()) {
    std::string t = w.next_token();
    if (prev == "into" && (t == "temp" || t == "temporary")) {
      return true;
    }
    if (!t.empty()) {
      prev = std::move(t);
    }
  }
  return false;
}

// DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [[NO] SCROLL] CURSOR [WITH HOLD] FOR ...
bool declares_hold_cursor(std::string_view sql) {
  Words w(sql);
  std::string prev;
  while (!w.at_end()) {
    std::string t = w.next_token();
    if (t == "for") {
      return false;
    }
    if (prev == "with" && t == "hold") {
      return true;
    }
    if (!t.empty()) {
      prev = std::move(t);
    }
  }
  return false;
}

// The session-level name PostgreSQL's grammar gives to SET/RESET forms with their own
// syntax; `w` is positioned after SET or RESET.
std::string setting_name(Words& w) {
  std::string name = w.word();
  if (name == "session") {
    const std::string next = w.word();
    if (next == "authorization") {
      return "session authorization";
    }
    if (next == "characteristics") {
      return "session characteristics";
    }
    name = next;  // SET SESSION name ...
  }
  if (name == "time") {
    return "timezone";  // SET TIME ZONE
  }
  if (name == "names") {
    return "client_encoding";
  }
  if (name == "schema") {
    return "search_path";
  }
  if (name == "xml") {
    return "xmloption";
  }
  return name;
}

// Pin reasons of one statement, judged by its first keyword.
std::uint8_t statement_pins(std::string_view stmt, std::uint8_t& unpins) {
  Words w(stmt);
  const std::string first = w.word();
  if (first == "listen") {
    return kPinListen;
  }
  if (first == "unlisten") {
    if (w.skip_space() && stmt[w.pos()] == '*') {
      unpins |= kPinListen;
    }
    return 0;
  }
  if (first == "create") {
    for (int i = 0; i < 4; ++i) {
      const std::string next = w.word();
      if (next == "temp" || next == "temporary") {
        return kPinTempTable;
      }
      if (next != "global" && next != "local" && next != "or" && next != "replace" &&
          next != "unlogged") {
        break;
      }
    }
    return 0;
  }
  if (first == "select" || first == "with") {
    return selects_into_temp(stmt) ? kPinTempTable : 0;
  }
  if (first == "declare") {
    return declares_hold_cursor(stmt) ? kPinHoldCursor : 0;
  }
  if (first == "close") {
    if (w.word() == "all") {
      unpins |= kPinHoldCursor;
    }
    return 0;
  }
  if (first == "discard") {
    const std::string what = w.word();
    if (what == "temp" || what == "temporary") {
      unpins |= kPinTempTable;
    }  // DISCARD ALL is SessionEffect::DiscardAll, which clears every pin

    return 0;
  }
  if (first == "prepare" || first == "execute") {
    return w.word() == "transaction" ? 0 : kPinSqlPrepare;
  }
  return 0;
}

}  // namespace

std::uint8_t scan_pins(std::string_view sql) {
  const QueryScan q = scan_query(sql);
  std::uint8_t pins = q.pins;
  if (q.effect == SessionEffect::SqlPrepare || q.effect == SessionEffect::SqlExecute) {
    pins |= kPinSqlPrepare;  // in a Parse, pgmux cannot rename the statement
  }
  return pins;
}

QueryScan scan_query(std::string_view sql) {
  QueryScan out;
  out.pins |= advisory_effect(sql, out.unpins);
  if (icontains(sql, "set_config")) {
    out.untracked_settings = true;
  }
  const auto statements = split_statements(sql);
  if (statements.size() > 1) {
    // Not tracked as a whole: every statement may pin, and any SET/RESET/DISCARD makes the
    // backend's settings unknown.
    for (const auto stmt : statements) {
      out.pins |= statement_pins(stmt, out.unpins);
      Words w(stmt);
      const std::string kw = w.word();
      if (kw == "set" || kw == "reset" || kw == "discard") {
        out.untracked_settings = true;
      }
    }
    return out;
  }
  out.pins |= statement_pins(sql, out.unpins);
  Words w(sql);
  const std::string first = w.word();
  if (first == "prepare" || first == "execute") {
    const std::string name = w.word();
    if (name == "transaction" || name.empty()) {
      return out;  // PREPARE TRANSACTION 'gid' (two-phase commit): nothing to rename
    }
    out.pins &= static_cast<std::uint8_t>(~kPinSqlPrepare);  // tracked, not pinned
    out.effect = first == "prepare" ? SessionEffect::SqlPrepare : SessionEffect::SqlExecute;
    out.name = name;
    out.statement = std::string(trim_statement(sql.substr(w.pos())));
  } else if (first == "discard") {
    if (w.word() == "all") {
      out.effect = SessionEffect::DiscardAll;
    }
  } else if (first == "deallocate") {
    std::string name = w.word();
    if (name == "prepare") {
      name = w.word();
    }
    if (name == "all") {
      out.effect = SessionEffect::DeallocateAll;
    } else if (!name.empty()) {
      out.effect = SessionEffect::Deallocate;
      out.name = name;
    }
  } else if (first == "reset") {
    const std::string name = setting_name(w);
    if (name == "all") {
      out.effect = SessionEffect::ResetAll;
    } else if (!name.empty()) {
      out.effect = SessionEffect::Reset;
      out.name = name;
    }
  } else if (first == "set") {
    const std::string name = setting_name(w);
    if (name.empty() || name == "local" || name == "transaction" || name == "constraints") {
      return out;  // transaction-scoped: nothing follows the client
    }
    out.effect = SessionEffect::Set;
    out.name = name;
    out.statement = std::string(trim_statement(sql));
  }
  return out;
}

std::string_view to_string_pins(std::uint8_t pins) {
  if (pins & kPinListen) return "listen";
  if (pins & kPinAdvisoryLock) return "advisory_lock";
  if (pins & kPinTempTable) return "temp_table";
  if (pins & kPinHoldCursor) return "hold_cursor";
  if (pins & kPinSqlPrepare) return "sql_prepare";
  return "";
}

}  // namespace pooler::client
