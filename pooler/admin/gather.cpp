#include "pooler/admin/gather.h"

#include <algorithm>

namespace pooler::admin {

void gather(Control& control, net::Loop& home, std::weak_ptr<void> alive,
            std::function<void(Snapshots)> done) {
  gather_each<WorkerSnapshot>(
      control, home, std::move(alive),
      [](WorkerControl& worker) { return worker.snapshot(); },
      [done = std::move(done)](Snapshots snaps) {
        for (std::size_t i = 0; i < snaps.size(); ++i) {
          snaps[i].worker = static_cast<int>(i);
        }
        done(std::move(snaps));
      });
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
      m.stats.wait_time_us += p.stats.wait_time_us;
      m.traffic.queries += p.traffic.queries;
      m.traffic.transactions += p.traffic.transactions;
      m.traffic.bytes_in += p.traffic.bytes_in;
      m.traffic.bytes_out += p.traffic.bytes_out;
      m.traffic.query_time_us += p.traffic.query_time_us;
      m.traffic.xact_time_us += p.traffic.xact_time_us;
    }
  }
  return out;
}

}  // namespace pooler::admin
