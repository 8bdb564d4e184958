#pragma once
// Collects one WorkerSnapshot from every worker without locks: a task is posted to each
// worker's loop, each answers by posting its snapshot back to `home`, and `done` runs on
// `home` once all have answered, unless `alive` has expired by then.

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <memory>
#include <vector>

#include "pooler/admin/control.h"
#include "pooler/net/loop.h"

namespace pooler::admin {

using Snapshots = std::vector<WorkerSnapshot>;  // ordered by worker index

void gather(Control& control, net::Loop& home, std::weak_ptr<void> alive,
            std::function<void(Snapshots)> done);

// Pools summed over workers, by (database, user): what SHOW POOLS and /metrics report.
std::map<std::pair<std::string, std::string>, PoolRow> merged_pools(const Snapshots& snaps);

// Runs `command` on every worker's loop (fire and forget).
void for_each_worker(Control& control, const std::function<void(WorkerControl&)>& command);

}  // namespace pooler::admin
