#include "tests/integration/pg_client.h"

namespace pooler::integration {
namespace {

struct PqClear {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PqClear>;

}  // namespace

PgResult copy_result(PGconn* conn, PGresult* raw) {
  PgResult out;
  if (raw == nullptr) {
    out.status = PGRES_FATAL_ERROR;
    out.error = PQerrorMessage(conn);
    return out;
  }
  out.status = PQresultStatus(raw);
  out.error = PQresultErrorMessage(raw);
  if (const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE); state != nullptr) {
    out.sqlstate = state;
  }
  out.command_tuples = PQcmdTuples(raw);
  const int columns = PQnfields(raw);
  for (int c = 0; c < columns; ++c) {
    out.columns.emplace_back(PQfname(raw, c));
  }
  const int rows = PQntuples(raw);
  out.rows.resize(rows);
  out.nulls.resize(rows);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      const bool null = PQgetisnull(raw, r, c) != 0;
      out.nulls[r].push_back(null);
      out.rows[r].emplace_back(null ? "" : PQgetvalue(raw, r, c));
    }
  }
  return out;
}

ConnectResult connect(const std::string& conninfo) {
  ConnectResult out;
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr) {
    out.error = "PQconnectdb returned NULL (out of memory)";
    return out;
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    out.error = PQerrorMessage(conn.get());
    return out;
  }
  out.conn = std::move(conn);
  return out;
}

bool PgResult::ok() const {
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

std::string PgResult::first() const {
  if (rows.empty() || rows.front().empty()) {
    return "";
  }
  return rows.front().front();
}

std::ostream& operator<<(std::ostream& out, const PgResult& result) {
  out << PQresStatus(result.status);
  if (!result.sqlstate.empty()) {
    out << " [" << result.sqlstate << "]";
  }
  if (!result.error.empty()) {
    out << " " << result.error;
  }
  if (!result.rows.empty()) {
    out << " rows=" << result.rows.size() << " first=" << result.first();
  }
  return out;
}

PgResult exec(PGconn* conn, const std::string& sql) {
  // PQexec returns only the last result of a multi-statement string; errors stop there.
  PgResultPtr raw(PQexec(conn, sql.c_str()));
  return copy_result(conn, raw.get());
}

PgResult exec_params(PGconn* conn, const std::string& sql,
                     const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  PgResultPtr raw(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  return copy_result(conn, raw.get());
}

std::optional<std::string> query_value(PGconn* conn, const std::string& sql) {
  PgResult result = exec(conn, sql);
  if (!result.ok() || result.rows.empty() || result.columns.empty() || result.is_null(0, 0)) {
    return std::nullopt;
  }
  return result.rows[0][0];
}

std::string make_conninfo(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (!out.empty()) {
      out += ' ';
    }
    out += key;
    out += "='";
    for (char ch : value) {
      if (ch == '\'' || ch == '\\') {
        out += '\\';
      }
      out += ch;
    }
    out += '\'';
  }
  return out;
}

}  // namespace pooler::integration
