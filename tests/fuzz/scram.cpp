// libFuzzer target: SCRAM-SHA-256 message parsing on both sides (pooler/wire/scram.h).
// The input is up to two messages separated by '\n' (SCRAM messages are printable ASCII):
//   - pgmux as the server: client-first-message, then client-final-message;
//   - pgmux as the client (built from keys, as for logins without a plaintext password, so no
//     PBKDF2 with a fuzzed iteration count): server-first-message, then server-final-message.
// Both run on every input. The whole input is also parsed as a stored verifier and as base64.

#include "pooler/wire/scram.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/scram_fixture.h"

namespace {

using namespace pooler;
using namespace pooler::wire;

void as_server(std::string_view first, std::string_view final_msg) {
  ScramServer server(fuzz::rfc_verifier());
  server.set_nonce_for_test(std::string(fuzz::kRfcServerNonce));
  const auto server_first = server.on_client_first(first);
  if (!server_first) {
    return;
  }
  const auto server_final = server.on_client_final(final_msg);
  FUZZ_CHECK(server_final.has_value() == server.authenticated());
  if (server_final) {
    // Only the RFC's password can get here, so the proof gave back the RFC's ClientKey.
    FUZZ_CHECK(server.client_key() == fuzz::rfc_keys().client_key);
  }
}

void as_client(std::string_view server_first, std::string_view server_final) {
  const auto& keys = fuzz::rfc_keys();
  ScramClient client(keys.client_key, keys.server_key);
  client.set_nonce_for_test(std::string(fuzz::kRfcClientNonce), "user");
  (void)client.client_first();
  if (!client.on_server_first(server_first)) {
    return;
  }
  (void)client.on_server_final(server_final);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto nl = text.find('\n');
  const std::string_view first = text.substr(0, nl);
  const std::string_view second =
      nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);

  as_server(first, second);
  as_client(first, second);

  if (const auto verifier = parse_scram_verifier(text)) {
    FUZZ_CHECK(verifier->iterations >= 1 && verifier->iterations <= kScramMaxIterations);
    const auto again = parse_scram_verifier(format_scram_verifier(*verifier));
    FUZZ_CHECK(
        again && again->salt == verifier->salt && again->iterations == verifier->iterations &&
        again->stored_key == verifier->stored_key && again->server_key == verifier->server_key);
  }
  if (const auto decoded = base64_decode(text)) {
    FUZZ_CHECK(base64_decode(base64_encode(*decoded)) == decoded);
  }
  return 0;
}
