#pragma once
// Small libpq helpers for integration tests: an owning connection, a result copied
// into plain strings (so it outlives the PGresult), and one-liners for the common
// "run this and give me the value" case. Blocking libpq calls; test thread only.

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace pooler::integration {

struct PqFinish {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
// An open libpq connection; PQfinish on destruction.
using PgConn = std::unique_ptr<PGconn, PqFinish>;

struct ConnectResult {
  PgConn conn;        // nullptr when the connection failed
  std::string error;  // PQerrorMessage when it failed, "" otherwise
  explicit operator bool() const { return conn != nullptr; }
};

// Blocking connect. `conninfo` is a libpq keyword/value string or a URI.
ConnectResult connect(const std::string& conninfo);

// A query result with every cell copied out as text.
struct PgResult {
  ExecStatusType status = PGRES_FATAL_ERROR;
  std::string error;     // PQresultErrorMessage (or the connection's), "" on success
  std::string sqlstate;  // e.g. "42P01"; "" on success
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // NULL cells are ""; see is_null()
  std::vector<std::vector<bool>> nulls;        // same shape as rows
  std::string command_tuples;                  // PQcmdTuples: "3" after an INSERT of 3 rows

  // PGRES_COMMAND_OK or PGRES_TUPLES_OK.
  bool ok() const;
  bool is_null(std::size_t row, std::size_t column) const { return nulls.at(row).at(column); }
  // The first cell, or "" if there is none.
  std::string first() const;
};

std::ostream& operator<<(std::ostream& out, const PgResult& result);

// `raw` copied out (the caller still clears it); a null `raw` means libpq could not even
// send, and carries the connection's error.
PgResult copy_result(PGconn* conn, PGresult* raw);

// Runs `sql` with the simple query protocol (several statements allowed; the last
// result is returned). A broken connection gives PGRES_FATAL_ERROR with its message.
PgResult exec(PGconn* conn, const std::string& sql);
inline PgResult exec(const PgConn& conn, const std::string& sql) { return exec(conn.get(), sql); }

// Runs `sql` with the extended protocol (Parse/Bind/Execute), parameters as text.
PgResult exec_params(PGconn* conn, const std::string& sql, const std::vector<std::string>& params);

// The first column of the first row; std::nullopt on error, no rows, or NULL.
std::optional<std::string> query_value(PGconn* conn, const std::string& sql);
inline std::optional<std::string> query_value(const PgConn& conn, const std::string& sql) {
  return query_value(conn.get(), sql);
}

// Builds a libpq keyword/value conninfo, quoting values as libpq requires.
std::string make_conninfo(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace pooler::integration
