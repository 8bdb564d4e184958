#pragma once
// The HTTP endpoint's documents, built from worker snapshots: Prometheus text exposition
// format (version 0.0.4) for /metrics and JSON for /pools. Pure functions: no I/O.

#include <string>

#include "pooler/admin/gather.h"

namespace pooler::http {

std::string render_metrics(const admin::Snapshots& snapshots);
std::string render_pools_json(const admin::Snapshots& snapshots);
// True when some pool has a backend that is logged in (idle or active).
bool any_live_backend(const admin::Snapshots& snapshots);

}  // namespace pooler::http
