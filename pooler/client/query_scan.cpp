#include "pooler/client/query_scan.h"

#include <algorithm>
#include <cctype>

namespace pooler::client {
namespace {

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
        const auto end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
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

  std::size_t pos() const { return pos_; }
  void set_pos(std::size_t p) { pos_ = p; }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool icontains(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         }) != hay.end();
}

std::string_view trim_statement(std::string_view sql) {
  while (!sql.empty() && (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';')) {
    sql.remove_suffix(1);
  }
  while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front()))) {
    sql.remove_prefix(1);
  }
  return sql;
}

// More than one statement: a ';' followed by something other than blanks. Literals that
// contain ';' make this say "multi", which only means the query is not tracked.
bool is_multi_statement(std::string_view sql) {
  const auto semi = sql.find(';');
  if (semi == std::string_view::npos) {
    return false;
  }
  return !trim_statement(sql.substr(semi + 1)).empty();
}

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

}  // namespace

std::uint8_t scan_pins(std::string_view sql) {
  std::uint8_t unpins = 0;
  const QueryScan q = scan_query(sql);
  return static_cast<std::uint8_t>(q.pins | advisory_effect(sql, unpins));
}

QueryScan scan_query(std::string_view sql) {
  QueryScan out;
  Words w(sql);
  const std::string first = w.word();
  out.pins |= advisory_effect(sql, out.unpins);
  const bool multi = is_multi_statement(sql);
  if (icontains(sql, "set_config")) {
    out.untracked_settings = true;
  }
  if (multi) {
    // Any statement after the first that starts with SET, RESET or DISCARD.
    std::size_t at = 0;
    while ((at = sql.find(';', at)) != std::string_view::npos) {
      ++at;
      Words next(sql.substr(at));
      const std::string kw = next.word();
      if (kw == "set" || kw == "reset" || kw == "discard") {
        out.untracked_settings = true;
      }
    }
    if (first == "set" || first == "reset" || first == "discard") {
      out.untracked_settings = true;
    }
  }
  if (first == "listen") {
    out.pins |= kPinListen;
  } else if (first == "unlisten") {
    if (w.skip_space() && sql[w.pos()] == '*') {
      out.unpins |= kPinListen;
    }
  } else if (first == "create") {
    for (int i = 0; i < 4; ++i) {
      const std::string next = w.word();
      if (next == "temp" || next == "temporary") {
        out.pins |= kPinTempTable;
        break;
      }
      if (next != "global" && next != "local" && next != "or" && next != "replace" &&
          next != "unlogged") {
        break;
      }
    }
  } else if (first == "declare") {
    if (icontains(sql, "with hold")) {
      out.pins |= kPinHoldCursor;
    }
  } else if (first == "close") {
    if (w.word() == "all") {
      out.unpins |= kPinHoldCursor;
    }
  } else if (first == "prepare" || first == "execute") {
    // Single statements are tracked like protocol-level ones; inside a multi-statement
    // query pgmux cannot rename them, so the client keeps its backend.
    const std::string name = w.word();
    if (multi || name.empty()) {
      out.pins |= kPinSqlPrepare;
    } else {
      out.effect = first == "prepare" ? SessionEffect::SqlPrepare : SessionEffect::SqlExecute;
      out.name = name;
      out.statement = std::string(trim_statement(sql.substr(w.pos())));
    }
  } else if (first == "discard" && !multi) {
    const std::string what = w.word();
    if (what == "all") {
      out.effect = SessionEffect::DiscardAll;
    } else if (what == "temp" || what == "temporary") {
      out.unpins |= kPinTempTable;
    }
  } else if (first == "deallocate" && !multi) {
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
  } else if (first == "reset" && !multi) {
    const std::string name = w.word();
    if (name == "all") {
      out.effect = SessionEffect::ResetAll;
    } else if (!name.empty()) {
      out.effect = SessionEffect::Reset;
      out.name = name == "time" ? "timezone" : name;
    }
  } else if (first == "set" && !multi) {
    const std::size_t after_set = w.pos();
    std::string name = w.word();
    if (name == "session") {
      const std::size_t p = w.pos();
      name = w.word();
      if (name == "characteristics" || name == "authorization") {
        out.effect = SessionEffect::Set;
        out.name = "session " + name;
        out.statement = std::string(trim_statement(sql));
        return out;
      }
      (void)p;
    }
    if (name.empty() || name == "local" || name == "transaction" || name == "constraints") {
      return out;  // transaction-scoped: nothing follows the client
    }
    if (name == "time") {
      name = "timezone";
    }
    (void)after_set;
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
