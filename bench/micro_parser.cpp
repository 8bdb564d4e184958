// Microbenchmarks of query classification on the data path: the shape key, a cache hit
// (what nearly every query pays), a cache miss (once per query shape), and the router's
// decision. Target (issue 4): a simple-protocol hit, literal scan included, <= 1 us for
// queries under 300 bytes.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "parser/analysis_cache.h"
#include "parser/analyzer.h"
#include "parser/query_shape.h"
#include "router/router.h"

namespace {

// Typical API queries, each with `{}` where a varying literal goes.
const char* const kPointSelect = "SELECT id, name, email, created_at FROM users WHERE id = {}";
const char* const kJoin =
    "SELECT o.id, o.total, o.created_at, u.name, u.email FROM orders o "
    "JOIN users u ON u.id = o.user_id WHERE o.status IN ('paid', 'shipped', 'delivered') "
    "AND u.country = 'DE' AND o.created_at >= '2024-01-01 00:00:00+00' "
    "AND o.id IN ({}, 202, 303, 404, 505, 606) ORDER BY o.created_at DESC LIMIT 50";
const char* const kInsert =
    "INSERT INTO events (user_id, kind, payload, created_at) VALUES ({}, 'login', "
    "'{\"ip\": \"10.0.0.1\", \"agent\": \"Mozilla/5.0 (X11; Linux x86_64)\"}', now()) "
    "RETURNING id, created_at";
const char* const kExtended =
    "SELECT o.id, o.total, o.created_at, u.name, u.email FROM orders o "
    "JOIN users u ON u.id = o.user_id WHERE o.status = ANY($1) AND u.country = $2 "
    "AND o.created_at >= $3 ORDER BY o.created_at DESC LIMIT 50";

const char* query_of(int which) {
  switch (which) {
    case 0: return kPointSelect;
    case 1: return kJoin;
    default: return kInsert;
  }
}

std::string fill(const char* pattern, const std::string& value) {
  std::string s = pattern;
  const std::size_t at = s.find("{}");
  if (at != std::string::npos) {
    s.replace(at, 2, value);
  }
  return s;
}

// 64 texts of the same shape with different literal values.
std::vector<std::string> variants(const char* pattern) {
  std::vector<std::string> out;
  for (int i = 0; i < 64; ++i) {
    out.push_back(fill(pattern, std::to_string(1000003 * i % 999983)));
  }
  return out;
}

void set_label(benchmark::State& state, const std::string& sample) {
  state.SetLabel(std::to_string(sample.size()) + " bytes");
}

// The literal-stripping scan alone.
void BM_ShapeKey(benchmark::State& state) {
  const auto texts = variants(query_of(static_cast<int>(state.range(0))));
  std::string key;
  std::size_t i = 0;
  for (auto _ : state) {
    const parser::Shape shape = parser::scan_shape(texts[i++ & 63], key);
    benchmark::DoNotOptimize(shape);
    benchmark::DoNotOptimize(key.data());
  }
  set_label(state, texts[0]);
}
BENCHMARK(BM_ShapeKey)->Arg(0)->Arg(1)->Arg(2);

// A simple-protocol hit: scan, hash, lookup (literal values differ on every call).
void BM_CacheHitSimple(benchmark::State& state) {
  const auto texts = variants(query_of(static_cast<int>(state.range(0))));
  parser::AnalysisCache cache;
  cache.get(texts[0], false);
  std::size_t i = 0;
  for (auto _ : state) {
    const parser::Analysis& a = cache.get(texts[i++ & 63], false);
    benchmark::DoNotOptimize(&a);
  }
  if (cache.misses() != 1) {
    state.SkipWithError("expected hits only");
  }
  set_label(state, texts[0]);
}
BENCHMARK(BM_CacheHitSimple)->Arg(0)->Arg(1)->Arg(2);

// An extended-protocol hit (Parse): hash and lookup of the text.
void BM_CacheHitExtended(benchmark::State& state) {
  const std::string text = kExtended;
  parser::AnalysisCache cache;
  cache.get(text, true);
  for (auto _ : state) {
    const parser::Analysis& a = cache.get(text, true);
    benchmark::DoNotOptimize(&a);
  }
  set_label(state, text);
}
BENCHMARK(BM_CacheHitExtended);

// A miss: every text is a new shape (a new column alias), in a full cache that evicts.
void BM_CacheMiss(benchmark::State& state) {
  const char* pattern = query_of(static_cast<int>(state.range(0)));
  std::vector<std::string> texts;
  for (int i = 0; i < 4096; ++i) {
    std::string s = fill(pattern, "7");
    if (s.starts_with("INSERT")) {
      s += ", c" + std::to_string(i);  // RETURNING ..., c<i>
    } else {
      s.insert(s.find(' ') + 1, "c" + std::to_string(i) + ", ");  // SELECT c<i>, ...
    }
    texts.push_back(std::move(s));
  }
  parser::AnalysisCache::Options options;
  options.capacity = 1024;
  options.fast_classify = state.range(1) != 0;
  parser::AnalysisCache cache(options);
  std::size_t i = 0;
  for (auto _ : state) {
    const parser::Analysis& a = cache.get(texts[i++ & 4095], false);
    benchmark::DoNotOptimize(&a);
  }
  if (cache.hits() != 0) {
    state.SkipWithError("expected misses only");
  }
  set_label(state, texts[0]);
}
BENCHMARK(BM_CacheMiss)->Args({0, 1})->Args({1, 1})->Args({2, 0})->Args({2, 1});

// analyze() alone: libpg_query parse + JSON walk + fingerprint + normalize.
void BM_Analyze(benchmark::State& state) {
  const std::string text = fill(query_of(static_cast<int>(state.range(0))), "7");
  for (auto _ : state) {
    auto a = parser::analyze(text);
    benchmark::DoNotOptimize(a);
  }
  set_label(state, text);
}
BENCHMARK(BM_Analyze)->Arg(0)->Arg(1)->Arg(2);

// The router's decision for a cached read, two healthy replicas.
void BM_Decide(benchmark::State& state) {
  parser::AnalysisCache cache;
  const parser::Analysis& a = cache.get(fill(kJoin, "7"), false);
  const router::FunctionPolicy policy({"nextval", "random"}, {}, {});
  const std::vector<router::ReplicaState> replicas(2, router::ReplicaState{.lag_bytes = 0,
                                                                           .lag_ms = 0});
  const router::RouterConfig config{};
  std::uint64_t counter = 0;
  for (auto _ : state) {
    const router::Route r = router::decide(a, {}, replicas, config, policy, counter);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Decide);

}  // namespace
