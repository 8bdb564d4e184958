#pragma once
// SHOW QUERIES (per-shape statistics summed over workers) and SHOW INDEX_ADVICE (the
// advisor's records): pgmux's own commands, thin views over advice/. Pure functions.

#include <vector>

#include "pooler/admin/show.h"
#include "pooler/advice/advice_store.h"
#include "pooler/advice/shape_stats.h"

namespace pooler::admin {

// One row per shape: the workers' rows for the same (database, fingerprint) added up,
// most total time first.
std::vector<advice::ShapeRow> merge_shapes(
    const std::vector<std::vector<advice::ShapeRow>>& by_worker);

// The records with calls, time and last_seen brought up to date from live statistics
// (the advisor's copy moves only when a shape is sampled again).
void overlay_live_counts(std::vector<advice::AdviceRecord>& records,
                         const std::vector<advice::ShapeRow>& merged_shapes);

Table show_queries(const std::vector<advice::ShapeRow>& shapes);
Table show_index_advice(const std::vector<advice::AdviceRecord>& records);

}  // namespace pooler::admin
