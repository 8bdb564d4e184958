// libFuzzer target: what a server (or anything pretending to be one) can send to pgmux. The
// input is cut into frames by wire::peek_frame as BackendConn does; every frame goes through
// every backend decoder, and a decoded message of the frame's own type is re-encoded where the
// encoding is canonical (the bytes must come back unchanged). CommandComplete tags also go
// through RequestTimer::rows_of, as the per-shape statistics count rows.

#include <cstddef>
#include <cstdint>

#include "pooler/backend/request_timer.h"
#include "pooler/wire/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace pooler;
using namespace pooler::wire;
using fuzz::check_round_trip;

void decode_all(const Frame& f) {
  if (const auto auth = decode_authentication(f)) {
    FUZZ_CHECK(auth->data.size() + 4 == f.body.size());
  }
  check_round_trip(f, decode_parameter_status(f));
  check_round_trip(f, decode_backend_key_data(f));
  check_round_trip(f, decode_ready_for_query(f));
  const auto complete = decode_command_complete(f);
  check_round_trip(f, complete);
  if (complete) {
    (void)backend::RequestTimer::rows_of(complete->tag);
  }
  // ErrorResponse and NoticeResponse: not canonical (unknown fields are dropped), so only
  // a second decode of the re-encoded message is compared.
  if (const auto err = decode_error_response(f)) {
    WriteBuffer out;
    encode(*err, out);
    auto again = peek_frame(out.data(), Phase::Regular, UINT32_MAX);
    FUZZ_CHECK(again && *again);
    const auto err2 = decode_error_response(**again);
    FUZZ_CHECK(err2);
    FUZZ_CHECK(err2->severity == err->severity && err2->sqlstate == err->sqlstate &&
               err2->message == err->message && err2->detail == err->detail &&
               err2->hint == err->hint);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::for_each_frame(fuzz::as_bytes(data, size), decode_all);
  return 0;
}
