#pragma once
// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, on both sides, with no channel
// binding. Pure computation: no sockets, no logging. The message strings are the payloads of
// the SASL messages ("SASL Authentication" in the PostgreSQL docs, protocol-flow section):
//   client-first-message  in SASLInitialResponse (F 'p')
//   server-first-message  in AuthenticationSASLContinue (B 'R', code 11)
//   client-final-message  in SASLResponse (F 'p')
//   server-final-message  in AuthenticationSASLFinal (B 'R', code 12)
//
// Passwords are used as raw bytes, without SASLprep. PostgreSQL applies SASLprep only to valid
// UTF-8 without prohibited characters and falls back to the raw bytes otherwise, so the two
// agree for ASCII passwords and for anything SASLprep leaves unchanged.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "pooler/base/result.h"

namespace pooler::wire {

inline constexpr std::string_view kScramMechanism = "SCRAM-SHA-256";
inline constexpr int kScramDefaultIterations = 4096;  // PostgreSQL's scram_iterations default
inline constexpr int kScramMaxIterations = 10'000'000;

using ScramKey = std::array<std::uint8_t, 32>;  // one SHA-256 sized key

struct ScramKeys {
  ScramKey client_key{}, stored_key{}, server_key{};
};

// What PostgreSQL stores in pg_authid.rolpassword for a SCRAM user.
struct ScramVerifier {
  int iterations = kScramDefaultIterations;
  std::string salt;  // raw bytes
  ScramKey stored_key{};
  ScramKey server_key{};
};

// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations), then the three keys.
// `iterations` must be in [1, kScramMaxIterations].
ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, int iterations);

// "SCRAM-SHA-256$<iter>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>"; Errc::Protocol
// when malformed.
[[nodiscard]] Result<ScramVerifier> parse_scram_verifier(std::string_view text);
ScramVerifier make_scram_verifier(std::string_view password, std::string_view salt, int iterations);
// A fresh verifier with a random 16-byte salt and 4096 iterations, as PostgreSQL makes one
// for ALTER ROLE ... PASSWORD. Lets ScramServer authenticate against a plaintext password.
ScramVerifier scram_verifier_for_plaintext(std::string_view password);
std::string format_scram_verifier(const ScramVerifier& v);
bool is_scram_verifier(std::string_view text);

// Standard base64 with padding, as PostgreSQL's pg_b64_encode. The decoder is strict: no
// whitespace, length a multiple of 4, '=' only as trailing padding.
std::string base64_encode(std::span<const std::uint8_t> data);
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

// Cryptographically strong random bytes (the kernel's getrandom); aborts if it cannot
// provide them.
void random_bytes(std::span<std::uint8_t> out);

// pgmux as the SCRAM server, authenticating a client. One object per exchange, used in order:
// on_client_first, on_client_final. Loop thread only (no shared state).
class ScramServer {
 public:
  explicit ScramServer(ScramVerifier verifier);

  // client-first-message -> server-first-message. Errc::Protocol when malformed or when the
  // client asks for channel binding or an authorization identity.
  [[nodiscard]] Result<std::string> on_client_first(std::string_view client_first);
  // client-final-message -> server-final-message ("v=..."). Errc::Auth when the proof is
  // wrong ("password authentication failed"), Errc::Protocol when malformed.
  [[nodiscard]] Result<std::string> on_client_final(std::string_view client_final);

  bool authenticated() const { return step_ == Step::Done; }
  // After a successful on_client_final: ClientKey = ClientProof XOR ClientSignature. With the
  // verifier's ServerKey it lets ScramClient log in to PostgreSQL as this user without the
  // plaintext. All zeros before that.
  const ScramKey& client_key() const { return client_key_; }

  // Test hook: the server nonce part (appended to the client's nonce) instead of random.
  void set_nonce_for_test(std::string server_nonce) { server_nonce_ = std::move(server_nonce); }

 private:
  enum class Step : std::uint8_t {
    AwaitingClientFirst,  // nothing received yet
    AwaitingClientFinal,  // server-first-message sent
    Done,                 // proof verified, server-final-message returned
    Failed,               // any error; further input is rejected
  };

  ScramVerifier verifier_;
  Step step_ = Step::AwaitingClientFirst;
  std::string gs2_header_;         // "n,," or "y,,", echoed back base64 in c=
  std::string client_first_bare_;  // "n=...,r=..." part of the AuthMessage
  std::string server_first_;
  std::string server_nonce_;  // our part of the nonce; random unless set for a test
  std::string full_nonce_;    // client nonce + server nonce
  ScramKey client_key_{};
};

// pgmux as the SCRAM client, logging in to PostgreSQL. One object per exchange, used in order:
// client_first, on_server_first, on_server_final. Loop thread only.
// How many PBKDF2 derivations ScramClients made on this thread (tests: repeated logins
// with the same password and salt derive once).
std::uint64_t scram_client_derivations();

class ScramClient {
 public:
  explicit ScramClient(std::string password);  // plaintext
  // Keys only (no plaintext), e.g. ScramServer::client_key() and the verifier's ServerKey.
  // Logs in only when PostgreSQL's verifier has the salt and iterations these keys came from;
  // the salt and iteration count the server sends are then not used.
  ScramClient(ScramKey client_key, ScramKey server_key);

  // "n,,n=,r=<nonce>": PostgreSQL ignores the SCRAM user name (it uses the startup one).
  std::string client_first();
  // server-first-message -> client-final-message. Errc::Protocol when malformed.
  [[nodiscard]] Result<std::string> on_server_first(std::string_view server_first);
  // Verifies the ServerSignature in "v=...". Errc::Auth when wrong or when the server sent
  // "e=<error>"; Errc::Protocol when malformed.
  [[nodiscard]] Result<void> on_server_final(std::string_view server_final);

  // Test hook: the client nonce (and SCRAM user name) instead of random (and empty).
  void set_nonce_for_test(std::string nonce, std::string user = {}) {
    client_nonce_ = std::move(nonce);
    user_ = std::move(user);
  }

 private:
  enum class Step : std::uint8_t {
    Initial,              // client_first() not called yet
    AwaitingServerFirst,  // client-first-message produced
    AwaitingServerFinal,  // client-final-message produced
    Done,                 // server signature verified
    Failed,               // any error; further input is rejected
  };

  std::optional<std::string> password_;  // empty when built from keys
  ScramKeys keys_{};
  Step step_ = Step::Initial;
  std::string user_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
};

}  // namespace pooler::wire
