// libFuzzer target: what a client can send after login. The input is a byte stream cut into
// frames by wire::peek_frame (regular phase, as ClientSession::on_read does); every frame goes
// through every frontend decoder (the session picks one by type byte, but a decoder must not
// care what it is fed), and what decodes is re-encoded, which must give the same bytes back.
// The stream is also framed once in the startup phase and decoded as a startup packet.

#include <cstddef>
#include <cstdint>

#include "pooler/wire/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace pooler;
using namespace pooler::wire;
using fuzz::check_round_trip;
using fuzz::same_bytes;
using fuzz::wire_bytes;

void decode_all(const Frame& f) {
  const auto query = decode_query(f);
  check_round_trip(f, query);
  const auto parse = decode_parse(f);
  check_round_trip(f, parse);
  const auto bind = decode_bind(f);
  check_round_trip(f, bind);
  const auto describe = decode_describe(f);
  check_round_trip(f, describe);
  const auto close = decode_close(f);
  check_round_trip(f, close);

  if (const auto password = decode_password(f)) {
    WriteBuffer out;
    encode_password(*password, out);
    FUZZ_CHECK(same_bytes(out.data(), wire_bytes(f)));
  }
  if (const auto sasl = decode_sasl_initial_response(f)) {
    FUZZ_CHECK(sasl->data.size() <= f.body.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = fuzz::as_bytes(data, size);

  // Startup phase: the first packet of a connection.
  if (auto scanned = peek_frame(input, Phase::Startup, fuzz::kFuzzMaxMessage);
      scanned && *scanned) {
    const Frame& f = **scanned;
    fuzz::check_frame(f, input, Phase::Startup);
    (void)decode_startup(f);
  }

  // Regular phase: frames back to back, as long as they are complete and valid.
  fuzz::for_each_frame(input, [](const Frame& f) {
    FUZZ_CHECK(f.size_on_wire >= kHeaderSize);
    decode_all(f);
  });
  return 0;
}
