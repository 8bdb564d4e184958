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

// The same for any value a worker can produce on its loop: take(worker) on each worker's
// loop, then done(values by worker index) on `home` unless `alive` has expired.
template <typename T>
void gather_each(Control& control, net::Loop& home, std::weak_ptr<void> alive,
                 std::function<T(WorkerControl&)> take, std::function<void(std::vector<T>)> done) {
  struct Pending {  // shared by the posted tasks; only touched on `home`'s loop thread
    std::vector<T> values;
    int remaining = 0;
    std::weak_ptr<void> alive;
    std::function<void(std::vector<T>)> done;
  };
  const int n = control.worker_count();
  auto pending = std::make_shared<Pending>();
  pending->values.resize(static_cast<std::size_t>(n));
  pending->remaining = n;
  pending->alive = std::move(alive);
  pending->done = std::move(done);
  for (int i = 0; i < n; ++i) {
    control.on_worker(i, [pending, &home, i, take](WorkerControl& worker) {
      auto value = std::make_shared<T>(take(worker));
      home.post([pending, value, i] {
        pending->values[static_cast<std::size_t>(i)] = std::move(*value);
        if (--pending->remaining == 0 && !pending->alive.expired()) {
          pending->done(std::move(pending->values));
        }
      });
    });
  }
}

// Pools summed over workers, by (database, user): what SHOW POOLS and /metrics report.
std::map<std::pair<std::string, std::string>, PoolRow> merged_pools(const Snapshots& snaps);

// Runs `command` on every worker's loop (fire and forget).
void for_each_worker(Control& control, const std::function<void(WorkerControl&)>& command);

}  // namespace pooler::admin
