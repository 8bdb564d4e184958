// libFuzzer target: the bookkeeping of a backend's replies (pooler/backend): ExpectedReplies,
// which matches each reply frame's type against what the forwarded messages owe, and
// RequestTimer, which gives rows and errors to the timed requests. The input is a program,
// one operation per byte (and its argument bytes): the messages pgmux forwards or injects,
// reply types as a server (or anything pretending to be one) may send them in any order, and
// the owner's calls. Nothing may crash, and every client Parse is answered at most once.

#include <cstddef>
#include <cstdint>
#include <string>

#include "pooler/backend/expected_replies.h"
#include "pooler/backend/request_timer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace pooler::backend;

struct Sink final : ExpectedReplies::Sink {
  std::size_t synthetic = 0;
  std::size_t parse_done = 0;
  void emit_synthetic(const std::string& bytes) override {
    FUZZ_CHECK(!bytes.empty());
    ++synthetic;
  }
  void statement_failed(std::uint64_t statement) override { FUZZ_CHECK(statement != 0); }
  void statement_prepared(std::uint64_t statement) override { FUZZ_CHECK(statement != 0); }
  void client_parse_done(bool) override { ++parse_done; }
};

class Program {
 public:
  Program(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

constexpr char kReplyTypes[] = {'1', '2', '3', 't', 'T', 'n', 'D', 'C', 'I', 's', 'Z',
                                'E', 'N', 'A', 'S', 'G', 'H', 'd', 'c', 'W', 'V', 'K'};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Sink sink;
  ExpectedReplies replies(sink);
  RequestTimer timer;
  std::size_t client_parses = 0;  // entries that must report client_parse_done once
  std::size_t cleared = 0;        // ... or were dropped by clear()
  Program p(data, size);
  while (!p.done()) {
    const std::uint8_t op = p.next();
    switch (op % 16) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
        replies.expect(static_cast<Reply>(op % 16), p.next());
        break;
      case 7: {
        const std::uint8_t bits = p.next();
        replies.expect_hidden(
            static_cast<Reply>(bits % 7), p.next(),
            HiddenOptions{(bits & 8) != 0, (bits & 16) != 0, (bits & 32) != 0, (bits & 64) != 0});
        break;
      }
      case 8:
        replies.expect_client_parse(p.next() + 1);
        ++client_parses;
        break;
      case 9:
        replies.expect_query_then_more();
        break;
      case 10: {
        const bool client_parse = (p.next() & 1) != 0;
        replies.synthesize("1", client_parse);
        client_parses += client_parse ? 1 : 0;
        break;
      }
      case 11: {
        const char type = kReplyTypes[p.next() % sizeof(kReplyTypes)];
        const std::size_t before = replies.size();
        const Matched m = replies.on_reply(type);
        FUZZ_CHECK(replies.size() <= before);
        FUZZ_CHECK(!m.completed_hidden || m.completed_sync);
        if (type == 'C') {
          timer.on_command_complete(p.next() % 2 ? "SELECT 5" : "INSERT 0 18446744073709551615");
        } else if (type == 'E') {
          timer.on_error();
        } else if (type == 'Z') {
          timer.on_ready([](const RequestTimer::Entry&) {});
        }
        break;
      }
      case 12:
        replies.emit_ready_synthetic();
        break;
      case 13:
        replies.hide_front();
        break;
      case 14:
        // Dropped entries never report; count them as answered for the invariant below.
        cleared = client_parses - sink.parse_done;
        replies.clear();
        timer.clear();
        break;
      case 15: {
        const std::uint8_t arg = p.next();
        timer.start(arg, arg, arg, (arg & 1) != 0);
        break;
      }
    }
    FUZZ_CHECK(sink.parse_done + cleared <= client_parses);
  }
  return 0;
}
