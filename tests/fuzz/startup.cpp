// libFuzzer target: the startup phase as a ClientSession goes through it, without sockets.
// ClientSession owns a TcpStream and cannot be driven without a loop, so this replays the
// steps of client_login.cpp with the same functions: packets framed in the startup phase
// (SSLRequest / GSSENCRequest answered and read on, CancelRequest ends it), the
// StartupMessage's parameters turned into settings (parse_options, quote_literal, upsert,
// hash_settings), then the auth exchange in the regular phase: PasswordMessage for md5 (user
// "md5"), else SASLInitialResponse + SASLResponse against a SCRAM verifier (RFC 7677's).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "pooler/client/client_session_util.h"
#include "pooler/wire/md5_auth.h"
#include "pooler/wire/messages.h"
#include "pooler/wire/scram.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/scram_fixture.h"

namespace {

using namespace pooler;
using namespace pooler::wire;
using namespace pooler::client::session_util;

// ClientSession::handle_startup for a StartupMessage: false when the session would close.
bool startup(const StartupPacket& pkt, std::string& user) {
  user = std::string(pkt.param("user"));
  if (user.empty()) {
    return false;
  }
  std::vector<std::pair<std::string, std::string>> items, reported;
  for (const auto& [key, value] : pkt.params) {
    if (key == "options") {
      for (auto& [name, v] : parse_options(value)) {
        const std::string n = lower(name);
        upsert(items, n, "set_config(" + quote_literal(n) + ", " + quote_literal(v) + ", false)");
        upsert(reported, name, v);
      }
    } else if (!is_startup_only(key)) {
      const std::string n = lower(key);
      upsert(items, n, "set_config(" + quote_literal(n) + ", " + quote_literal(value) + ", false)");
      upsert(reported, key, value);
    }
  }
  std::sort(items.begin(), items.end());
  const std::uint64_t hash = hash_settings(items);
  FUZZ_CHECK(items.empty() == (hash == 0));
  return true;
}

// ClientSession::handle_auth: the next step of the exchange; false when it ends.
struct Auth {
  bool md5 = false;
  bool scram_started = false;
  ScramServer scram{fuzz::rfc_verifier()};
  std::string user;

  bool step(const Frame& frame) {
    if (frame.type != 'p') {
      return false;
    }
    if (md5) {
      static constexpr std::array<std::uint8_t, 4> kSalt = {1, 2, 3, 4};
      const auto password = decode_password(frame);
      // Right or wrong, the exchange ends here.
      (void)(password && *password == md5_salted_response("pencil", user, kSalt));
      return false;
    }
    if (!scram_started) {
      const auto initial = decode_sasl_initial_response(frame);
      if (!initial || initial->mechanism != "SCRAM-SHA-256") {
        return false;
      }
      const auto server_first = scram.on_client_first(initial->data);
      if (!server_first) {
        return false;
      }
      WriteBuffer out;
      encode_auth_sasl_continue(*server_first, out);
      scram_started = true;
      return true;
    }
    const auto server_final = scram.on_client_final(fuzz::as_text(frame.body));
    if (server_final) {
      WriteBuffer out;
      encode_auth_sasl_final(*server_final, out);
    }
    return false;  // logged in or refused: the startup phase is over either way
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto rest = fuzz::as_bytes(data, size);
  Phase phase = Phase::Startup;
  Auth auth;
  auth.scram.set_nonce_for_test(std::string(fuzz::kRfcServerNonce));
  while (!rest.empty()) {
    auto scanned = peek_frame(rest, phase, fuzz::kFuzzMaxMessage);
    if (!scanned || !*scanned) {
      break;
    }
    const Frame& f = **scanned;
    fuzz::check_frame(f, rest, phase);
    rest = rest.subspan(f.size_on_wire);
    if (phase == Phase::Regular) {
      if (!auth.step(f)) {
        break;
      }
      continue;
    }
    const auto pkt = decode_startup(f);
    if (!pkt || pkt->kind == StartupKind::CancelRequest) {
      break;
    }
    if (pkt->kind != StartupKind::Startup) {
      continue;  // SSLRequest / GSSENCRequest: answered 'N', the client goes on in plaintext
    }
    if (!startup(*pkt, auth.user)) {
      break;
    }
    auth.md5 = auth.user == "md5";
    phase = Phase::Regular;
  }
  return 0;
}
