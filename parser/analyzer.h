#pragma once
// Parsing with libpg_query (PostgreSQL 15 grammar) and classifying each statement.
// Costs tens of microseconds: call it through AnalysisCache on the data path.
// Thread-safe (libpg_query keeps its memory per thread); no I/O.

#include <string_view>

#include "parser/statement.h"
#include "pooler/base/result.h"

namespace parser {

// The analysis of `sql`: one StatementInfo per statement, the fingerprint, the normalised
// text and the hint.
//
// SQL that the grammar rejects is not an error here: the result has parse_error = true and
// the grammar's message in `error` (the router sends it to the primary, which reports the
// error to the client). An error Result means pgmux could not analyse text that may be
// valid (a parse tree nested deeper than json::Document::kMaxDepth, a NUL byte in the
// text, unreadable libpg_query output); callers treat it like a parse error.
[[nodiscard]] pooler::Result<Analysis> analyze(std::string_view sql);

}  // namespace parser
