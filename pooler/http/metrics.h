#pragma once
// The HTTP endpoint's documents, built from worker snapshots: Prometheus text exposition
// format (version 0.0.4) for /metrics and JSON for /pools. Pure functions: no I/O.

#include <string>

#include "pooler/admin/gather.h"
#include "pooler/advice/advice_store.h"

namespace pooler::http {

std::string render_metrics(const admin::Snapshots& snapshots);
std::string render_pools_json(const admin::Snapshots& snapshots);
// Index advice: the records gauge for /metrics, and the records as JSON (/index_advice).
std::string render_advice_metrics(const advice::AdviceStore& store, std::uint64_t samples_dropped);
std::string render_advice_json(const std::vector<advice::AdviceRecord>& records);
// True when some pool has a backend that is logged in (idle or active).
bool any_live_backend(const admin::Snapshots& snapshots);

}  // namespace pooler::http
