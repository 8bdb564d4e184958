// Microbenchmarks of the per-message work on the data path: frame scanning and matching
// replies against what a backend owes.

#include <benchmark/benchmark.h>

#include <vector>

#include "pooler/backend/expected_replies.h"
#include "pooler/wire/frame.h"
#include "pooler/wire/messages.h"

namespace {

using namespace pooler;

// A pgbench -S reply: RowDescription, DataRow, CommandComplete, ReadyForQuery.
std::vector<std::byte> select_reply() {
  wire::WriteBuffer out;
  out.begin_message('T').u16(1).cstring("abalance").u32(0).u16(0).u32(23).u16(4).i32(-1).u16(0);
  out.begin_message('D').u16(1).u32(4).bytes(std::string_view("1234"));
  wire::encode(wire::CommandComplete{"SELECT 1"}, out);
  wire::encode(wire::ReadyForQuery{wire::TxStatus::Idle}, out);
  return out.take();
}

void BM_PeekFrames(benchmark::State& state) {
  const auto bytes = select_reply();
  for (auto _ : state) {
    std::size_t used = 0;
    int n = 0;
    while (used < bytes.size()) {
      auto f = wire::peek_frame(std::span(bytes).subspan(used), wire::Phase::Regular, 1 << 26);
      used += (*f)->size_on_wire;
      ++n;
    }
    benchmark::DoNotOptimize(n);
  }
}
BENCHMARK(BM_PeekFrames);

struct NullSink final : backend::ExpectedReplies::Sink {
  void emit_synthetic(const std::string&) override {}
  void statement_failed(std::uint64_t) override {}
  void statement_prepared(std::uint64_t) override {}
  void client_parse_done(bool) override {}
};

void BM_ExpectedRepliesQuery(benchmark::State& state) {
  NullSink sink;
  backend::ExpectedReplies expected(sink);
  for (auto _ : state) {
    expected.expect(backend::Reply::Query);
    for (const char t : {'T', 'D', 'C', 'Z'}) {
      benchmark::DoNotOptimize(expected.on_reply(t));
    }
  }
}
BENCHMARK(BM_ExpectedRepliesQuery);

}  // namespace
