// Per-shape statistics and index-advice samples: which shape each forwarded request is,
// counted when it is sent and timed until its ReadyForQuery (backend::RequestTimer), and
// now and then one real execution handed to the index advisor.

#include <fmt/format.h>

#include "pooler/base/log.h"
#include "pooler/client/client_session.h"
#include "pooler/net/timer.h"
#include "pooler/wire/byte_reader.h"

namespace pooler::client {

namespace {

std::vector<std::uint32_t> read_param_types(std::span<const std::byte> block) {
  std::vector<std::uint32_t> types;
  wire::ByteReader in(block);
  const std::uint16_t n = in.u16();
  for (std::uint16_t i = 0; i < n && in.ok(); ++i) {
    types.push_back(in.u32());
  }
  return in.ok() ? types : std::vector<std::uint32_t>{};
}

// The parameter values and formats of a Bind (after its statement name).
bool read_bind_params(std::span<const std::byte> rest, advice::Sample& sample) {
  wire::ByteReader in(rest);
  const std::uint16_t nformats = in.u16();
  std::vector<int> formats;
  for (std::uint16_t i = 0; i < nformats && in.ok(); ++i) {
    formats.push_back(in.i16());
  }
  const std::uint16_t nparams = in.u16();
  for (std::uint16_t i = 0; i < nparams && in.ok(); ++i) {
    const std::int32_t len = in.i32();
    if (len < 0) {
      sample.params.emplace_back(std::nullopt);
    } else {
      auto bytes = in.bytes(static_cast<std::size_t>(len));
      sample.params.emplace_back(
          std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }
    // No codes: all text; one code: all alike; else one per parameter.
    const int format = formats.empty()       ? 0
                       : formats.size() == 1 ? formats[0]
                       : i < formats.size()  ? formats[i]
                                             : 0;
    sample.param_formats.push_back(format);
  }
  return in.ok();
}

}  // namespace

std::uint32_t ClientSession::shape_slot(const parser::Analysis& analysis, std::uint64_t& key) {
  advice::ShapeStats& stats = *host_.shape_stats();
  key = advice::shape_key(db_config_->name, analysis.fingerprint);
  if (const std::int64_t slot = stats.find(key); slot >= 0) {
    return static_cast<std::uint32_t>(slot);
  }
  return stats.insert(key, analysis.fingerprint, db_config_->name, analysis.normalized,
                      net::now_ms(host_.loop()));
}

advice::Sample ClientSession::make_sample(const advice::ShapeRow& row, std::string_view sql) {
  advice::Sample s;
  s.database = db_config_->name;
  s.user = std::string(user());
  s.key = row.key;
  s.fingerprint = row.fingerprint;
  s.query = row.query;
  s.sql = std::string(sql);
  s.worker = host_.worker_index();
  s.calls = row.calls;
  s.total_ns = row.total_ns;
  const std::int64_t offset = net::wall_offset_ms(host_.loop());
  s.first_seen_ms =
      static_cast<std::uint64_t>(static_cast<std::int64_t>(row.first_seen_ms) + offset);
  s.last_seen_ms = static_cast<std::uint64_t>(static_cast<std::int64_t>(row.last_seen_ms) + offset);
  if (settings_) {
    for (const auto& [name, stmt] : settings_->items) {
      if (name == "search_path") {
        s.search_path_sql = stmt.starts_with("set_config(") ? "SELECT " + stmt : stmt;
      }
    }
  }
  return s;
}

void ClientSession::count_query(std::string_view sql) {
  advice::ShapeStats* stats = host_.shape_stats();
  if (stats == nullptr || db_config_ == nullptr) {
    return;
  }
  const parser::Analysis& analysis = host_.analysis_cache().get(sql, /*extended=*/false);
  if (analysis.statements.empty()) {
    return;
  }
  std::uint64_t key = 0;
  const std::uint32_t slot = shape_slot(analysis, key);
  const std::uint64_t now_ms = net::now_ms(host_.loop());
  stats->count(slot, lease_on_replica_, now_ms);
  backend_->timer.start(slot, key, net::now_ns(), /*ends_at_ready=*/true);
  if (stats->take_sample_turn(slot, now_ms)) {
    host_.submit_sample(make_sample(stats->row(slot), sql));
  }
}

void ClientSession::count_unnamed_parse(std::string_view sql,
                                        std::span<const std::byte> param_types) {
  advice::ShapeStats* stats = host_.shape_stats();
  if (stats == nullptr || db_config_ == nullptr) {
    return;
  }
  const parser::Analysis& analysis = host_.analysis_cache().get(sql, /*extended=*/true);
  Extras& x = extras();
  x.unnamed_sample.reset();
  if (analysis.statements.empty()) {
    x.unnamed_slot = -1;
    return;
  }
  const std::uint32_t slot = shape_slot(analysis, x.unnamed_key);
  x.unnamed_slot = slot;
  if (stats->take_sample_turn(slot, net::now_ms(host_.loop()))) {
    x.unnamed_sample = std::make_unique<advice::Sample>(make_sample(stats->row(slot), sql));
    x.unnamed_sample->param_types = read_param_types(param_types);
  }
}

void ClientSession::count_bind(const wire::Bind& bind, std::uint64_t statement_id) {
  advice::ShapeStats* stats = host_.shape_stats();
  if (stats == nullptr || db_config_ == nullptr) {
    return;
  }
  const std::uint64_t now_ms = net::now_ms(host_.loop());
  std::int64_t slot = -1;
  std::uint64_t key = 0;
  std::unique_ptr<advice::Sample> sample;
  if (statement_id == 0) {
    if (!extras_ || extras_->unnamed_slot < 0) {
      return;
    }
    slot = extras_->unnamed_slot;
    key = extras_->unnamed_key;
    if (stats->row(static_cast<std::uint32_t>(slot)).key != key) {
      return;  // evicted since the Parse
    }
    sample = std::move(extras_->unnamed_sample);
  } else {
    const PreparedStatement* st = host_.prepared().find(statement_id);
    if (st == nullptr || st->sql_form) {
      return;
    }
    if (st->fingerprint == 0) {
      st->fingerprint = host_.analysis_cache().get(st->sql, /*extended=*/true).fingerprint;
    }
    key = advice::shape_key(db_config_->name, st->fingerprint);
    slot = stats->find(key);
    if (slot < 0) {
      const parser::Analysis& analysis = host_.analysis_cache().get(st->sql, /*extended=*/true);
      slot = shape_slot(analysis, key);
    }
    if (stats->take_sample_turn(static_cast<std::uint32_t>(slot), now_ms)) {
      sample = std::make_unique<advice::Sample>(
          make_sample(stats->row(static_cast<std::uint32_t>(slot)), st->sql));
      sample->param_types = read_param_types(
          std::as_bytes(std::span(st->param_types.data(), st->param_types.size())));
    }
  }
  const auto s = static_cast<std::uint32_t>(slot);
  stats->count(s, lease_on_replica_, now_ms);
  backend_->timer.start(s, key, net::now_ns(), /*ends_at_ready=*/false);
  if (sample && read_bind_params(bind.rest, *sample)) {
    host_.submit_sample(std::move(*sample));
  }
}

// One line per finished request, literal-free: the shape's normalized text.
void ClientSession::log_request(const backend::RequestTimer::Entry& e, std::uint64_t elapsed_ns) {
  const advice::ShapeRow& row = host_.shape_stats()->row(e.slot);
  const bool known = row.key == e.key;
  log::event(
      spdlog::level::info, "query",
      {{"client", std::to_string(id_), false},
       {"user", std::string(user())},
       {"database", std::string(database())},
       {"route", lease_on_replica_ ? "replica" : "primary"},
       {"backend_pid", std::to_string(backend_ != nullptr ? backend_->server_pid() : 0), false},
       {"duration_ms", fmt::format("{:.3f}", static_cast<double>(elapsed_ns) / 1e6), false},
       {"rows", std::to_string(e.rows), false},
       {"error", e.error ? "true" : "false", false},
       {"query", known ? row.query : std::string()}});
}

void ClientSession::finish_timed_requests() {
  advice::ShapeStats* stats = host_.shape_stats();
  if (stats == nullptr || backend_ == nullptr || backend_->timer.empty()) {
    return;
  }
  const std::uint64_t now = net::now_ns();
  auto& latency =
      lease_on_replica_ ? host_.counters().latency_replica : host_.counters().latency_primary;
  const bool log_queries = host_.config().general.log_queries;
  backend_->timer.on_ready([&](const backend::RequestTimer::Entry& e) {
    stats->finish(e.slot, e.key, now - e.start_ns, e.rows, e.error);
    latency.add(now - e.start_ns);
    pool_->traffic.query_time_us += (now - e.start_ns) / 1000;
    if (log_queries) {
      log_request(e, now - e.start_ns);
    }
  });
}

}  // namespace pooler::client
