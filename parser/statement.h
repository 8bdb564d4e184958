#pragma once
// What the router, the client session and (later) the index advisor need to know about a
// query. Plain data: no libpg_query types here, so callers never see the parser.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parser {

enum class StatementKind : std::uint8_t {
  Select,       // SELECT, VALUES, TABLE (also SELECT INTO: see select_into)
  Insert,       //
  Update,       //
  Delete,       //
  Merge,        //
  Begin,        // BEGIN, START TRANSACTION
  Commit,       // COMMIT, END
  Rollback,     // ROLLBACK, ABORT
  Savepoint,    // SAVEPOINT, RELEASE [SAVEPOINT], ROLLBACK TO [SAVEPOINT]
  TwoPhase,     // PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED
  Set,          // SET, SET LOCAL, SET TRANSACTION, SET SESSION CHARACTERISTICS
  Reset,        // RESET name, RESET ALL, SET name TO DEFAULT
  Show,         // SHOW
  Explain,      // EXPLAIN [ANALYZE]
  Copy,         // COPY (either direction)
  Listen,       //
  Unlisten,     //
  Notify,       //
  Lock,         // LOCK TABLE
  Do,           // DO $$ ... $$
  Call,         // CALL procedure
  Prepare,      // SQL-level PREPARE name AS ...
  Execute,      // SQL-level EXECUTE name
  Deallocate,   // DEALLOCATE name | ALL
  Discard,      // DISCARD ALL | PLANS | SEQUENCES | TEMP
  Declare,      // DECLARE cursor
  Fetch,        // FETCH, MOVE
  ClosePortal,  // CLOSE cursor | ALL
  Ddl,          // CREATE, ALTER, DROP, TRUNCATE, GRANT, REVOKE, COMMENT, REFRESH ...
  Utility,      // VACUUM, ANALYZE, CHECKPOINT, CLUSTER, REINDEX, LOAD, SET CONSTRAINTS ...
  Other,        // anything else: treated as a write
};

std::string_view to_string(StatementKind kind);

// A comparison in a WHERE clause or a JOIN ... ON condition, seen from the column's side
// (`7 < t.a` is reported as `t.a > 7`).
enum class CompareOp : std::uint8_t {
  Eq,       // =
  Ne,       // <> or !=
  Lt,       // <
  Le,       // <=
  Gt,       // >
  Ge,       // >=
  Between,  // BETWEEN [SYMMETRIC]
  In,       // IN (...), = ANY(...)
  Like,     // LIKE
  ILike,    // ILIKE
  IsNull,   // IS NULL
};

std::string_view to_string(CompareOp op);

// For the index advisor. `table` is the relation as written ("schema.name" or "name")
// after resolving aliases; empty when an unqualified column could belong to more than one
// relation of its FROM list (the advisor resolves it from the catalogue).
struct ColumnPredicate {
  std::string table;
  std::string column;
  CompareOp op = CompareOp::Eq;
  bool operator==(const ColumnPredicate&) const = default;
};

struct OrderColumn {
  std::string table;
  std::string column;
  bool descending = false;
  bool operator==(const OrderColumn&) const = default;
};

// One statement of a query. Only fields that depend on keywords and identifiers are
// filled, never literal values (except set_value), because one analysis serves every
// query of the same shape (see AnalysisCache).
struct StatementInfo {
  StatementKind kind = StatementKind::Other;
  // True only when the statement provably changes nothing but its own transaction's
  // state: SELECT/VALUES/TABLE without locking clause, INTO or data-modifying CTE; SHOW;
  // EXPLAIN without ANALYZE, or with ANALYZE of a read-only statement; COPY ... TO STDOUT of
  // a read-only source; transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, SET
  // TRANSACTION); DECLARE/PREPARE of a read-only statement. Function calls are NOT taken
  // into account here: the router judges `functions` with its FunctionPolicy.
  bool read_only = false;
  std::vector<std::string> tables;     // relations named, "schema.name" as written; no CTEs
  std::vector<std::string> functions;  // calls, lower-cased, "schema.name" as written
  bool locking_clause = false;         // FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE anywhere
  bool data_modifying_cte = false;     // WITH x AS (INSERT/UPDATE/DELETE ...) at any depth
  bool select_into = false;            // SELECT ... INTO new_table
  bool explain_analyze = false;        // EXPLAIN ANALYZE: the inner statement is executed
  // BEGIN/START TRANSACTION READ ONLY (true) or READ WRITE (false), SET TRANSACTION READ
  // ONLY/WRITE, and SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY/WRITE; nullopt
  // when the statement does not say.
  std::optional<bool> begin_read_only = std::nullopt;
  bool chain = false;  // COMMIT/ROLLBACK AND CHAIN: a new transaction starts at once
  // Set: the parameter, lower-cased ("transaction" for SET TRANSACTION;
  // "default_transaction_read_only" for SET SESSION CHARACTERISTICS ... READ ONLY/WRITE).
  // Reset: the parameter, or "all" for RESET ALL. Show: the parameter ("all" for SHOW ALL).
  std::string set_name;
  std::string set_value;   // Set: the value(s) as text, several joined with ", "
  bool set_local = false;  // SET LOCAL
  // Prepare/Execute/Deallocate: the statement name; Declare/Fetch/ClosePortal: the cursor;
  // Listen/Unlisten/Notify: the channel; Discard: "all", "plans", "sequences" or "temp".
  // Empty for DEALLOCATE ALL, CLOSE ALL and UNLISTEN *.
  std::string object_name;
  bool with_hold = false;  // DECLARE ... WITH HOLD
  // Index advisor inputs: comparisons per column (WHERE and JOIN ... ON, at every query
  // level) and ORDER BY columns. Deduplicated, in order of appearance.
  std::vector<ColumnPredicate> predicates;
  std::vector<OrderColumn> order_by;
};

// A routing hint in a comment: /* pgmux:primary */ or /* pgmux:replica */.
enum class Hint : std::uint8_t { Primary, Replica };

struct Analysis {
  std::vector<StatementInfo> statements;  // one per statement, in order; empty for ""
  // pg_query_fingerprint of the text (the same for every literal value and for $n
  // parameters); for a shallow analysis, a hash of the literal-free text.
  std::uint64_t fingerprint = 0;
  // The text with literals replaced (pg_query_normalize: $1, $2 ...; shallow: '?'), for logs
  // and metrics.
  std::string normalized;
  std::optional<Hint> hint = std::nullopt;  // several hints: Primary wins
  bool parse_error = false;  // the grammar rejected the text, or it could not be analysed
  std::string error;         // why, for logs
  // Classified from the first keyword only (fast_classify): `statements` holds one entry
  // with its kind and read_only = false; tables, functions and predicates are empty.
  bool shallow = false;

  // Every statement read-only and the text parsed (functions not considered).
  bool read_only() const;
};

}  // namespace parser
