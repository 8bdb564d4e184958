#include "pooler/admin/gather.h"

#include <algorithm>

namespace pooler::admin {
namespace {

// Shared by the posted tasks; only ever touched on `home`'s loop thread.
struct Pending {
  Snapshots snapshots;
  int remaining = 0;
  std::weak_ptr<void> alive;
  std::function<void(Snapshots)> done;
};

}  // namespace

void gather(Control& control, net::Loop& home, std::weak_ptr<void> alive,
            std::function<void(Snapshots)> done) {
  const int n = control.worker_count();
  auto pending = std::make_shared<Pending>();
  pending->snapshots.resize(static_cast<std::size_t>(n));
  pending->remaining = n;
  pending->alive = std::move(alive);
  pending->done = std::move(done);
  for (int i = 0; i < n; ++i) {
    control.on_worker(i, [pending, &home, i](WorkerControl& worker) {
      auto snap = std::make_shared<WorkerSnapshot>(worker.snapshot());
      snap->worker = i;
      home.post([pending, snap, i] {
        pending->snapshots[static_cast<std::size_t>(i)] = std::move(*snap);
        if (--pending->remaining == 0 && !pending->alive.expired()) {
          pending->done(std::move(pending->snapshots));
        }
      });
    });
  }
}

void for_each_worker(Control& control, const std::function<void(WorkerControl&)>& command) {
  for (int i = 0; i < control.worker_count(); ++i) {
    control.on_worker(i, command);
  }
}

std::map<std::pair<std::string, std::string>, PoolRow> merged_pools(const Snapshots& snaps) {
  std::map<std::pair<std::string, std::string>, PoolRow> out;
  for (const auto& snap : snaps) {
    for (const auto& p : snap.pools) {
      auto [it, fresh] = out.try_emplace({p.database, p.user}, p);
      if (fresh) {
        continue;
      }
      PoolRow& m = it->second;
      m.size += p.size;
      m.paused = m.paused || p.paused;
      m.cl_active += p.cl_active;
      m.cl_waiting += p.cl_waiting;
      m.pinned += p.pinned;
      m.stats.active += p.stats.active;
      m.stats.idle += p.stats.idle;
      m.stats.connecting += p.stats.connecting;
      m.stats.draining += p.stats.draining;
      m.stats.waiting += p.stats.waiting;
      m.stats.max_wait_ms = std::max(m.stats.max_wait_ms, p.stats.max_wait_ms);
      m.stats.leases += p.stats.leases;
      m.stats.connect_failures += p.stats.connect_failures;
    }
  }
  return out;
}

}  // namespace pooler::admin
