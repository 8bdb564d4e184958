#include "pooler/wire/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <initializer_list>

#include "pooler/base/check.h"

namespace pooler::wire {
namespace {

// 18 random bytes, base64: the nonce length PostgreSQL uses on both sides (SCRAM_RAW_NONCE_LEN).
constexpr std::size_t kRawNonceLength = 18;
constexpr std::size_t kSaltLength = 16;  // PostgreSQL's SCRAM_DEFAULT_SALT_LEN
constexpr std::string_view kVerifierPrefix = "SCRAM-SHA-256$";

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// SHA-256 through one algorithm object fetched once and a context per thread. OpenSSL 3's
// one-shot HMAC() looks the algorithms up again on every call, which cost more than the
// hashing: about 20,000 instructions per HMAC, two or three per login (callgrind).
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  POOLER_CHECK(md != nullptr, "SHA-256 is not available from OpenSSL");
  return md;
}

ScramKey sha256_of(std::initializer_list<std::span<const std::uint8_t>> parts) {
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context c;
  ScramKey out{};
  unsigned int length = 0;
  bool ok = c.ctx != nullptr && EVP_DigestInit_ex2(c.ctx, sha256_md(), nullptr) == 1;
  for (const auto& part : parts) {
    ok = ok && EVP_DigestUpdate(c.ctx, part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(c.ctx, out.data(), &length) == 1;
  POOLER_CHECK(ok && length == out.size(), "SHA-256 failed");
  return out;
}

ScramKey sha256(std::span<const std::uint8_t> data) { return sha256_of({data}); }

// HMAC-SHA-256 as RFC 2104 writes it, on SHA-256's 64-byte block.
ScramKey hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  constexpr std::size_t kBlock = 64;
  std::array<std::uint8_t, kBlock> k{};
  if (key.size() > kBlock) {
    const ScramKey hashed = sha256(key);
    std::copy(hashed.begin(), hashed.end(), k.begin());
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<std::uint8_t, kBlock> ipad{};
  std::array<std::uint8_t, kBlock> opad{};
  for (std::size_t i = 0; i < kBlock; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  ScramKey inner = sha256_of({ipad, as_bytes(data)});
  const ScramKey out = sha256_of({opad, inner});
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(ipad.data(), ipad.size());
  OPENSSL_cleanse(opad.data(), opad.size());
  OPENSSL_cleanse(inner.data(), inner.size());
  return out;
}

ScramKey xor_keys(const ScramKey& a, const ScramKey& b) {
  ScramKey out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = a[i] ^ b[i];
  }
  return out;
}

bool equal_keys(const ScramKey& a, const ScramKey& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_nonce() {
  std::array<std::uint8_t, kRawNonceLength> raw{};
  random_bytes(raw);
  return base64_encode(raw);
}

// RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII except ','.
bool is_printable_nonce(std::string_view nonce) {
  if (nonce.empty()) {
    return false;
  }
  for (const char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') {
      return false;
    }
  }
  return true;
}

std::optional<int> parse_iterations(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 1 ||
      value > kScramMaxIterations) {
    return std::nullopt;
  }
  return value;
}

std::optional<ScramKey> decode_key(std::string_view text) {
  const auto raw = base64_decode(text);
  if (!raw || raw->size() != ScramKey{}.size()) {
    return std::nullopt;
  }
  ScramKey key{};
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

// Reads "<letter>=<value>" attributes separated by ',' (RFC 5802 section 7). Values cannot
// contain ',', so each attribute ends at the next ',' or at the end of the message.
class AttributeReader {
 public:
  struct Attribute {
    char name = 0;
    std::string_view value;
  };

  explicit AttributeReader(std::string_view text) : text_(text) {}

  // The next attribute, of any name; std::nullopt at the end or when malformed.
  std::optional<Attribute> next() {
    if (pos_ > 0) {
      if (pos_ >= text_.size() || text_[pos_] != ',') {
        return std::nullopt;
      }
      ++pos_;
    }
    const std::string_view rest = text_.substr(pos_);
    const bool letter = rest.size() >= 2 &&
                        ((rest[0] >= 'a' && rest[0] <= 'z') || (rest[0] >= 'A' && rest[0] <= 'Z'));
    if (!letter || rest[1] != '=') {
      return std::nullopt;
    }
    const std::string_view value = rest.substr(2, rest.find(',') - 2);
    pos_ += 2 + value.size();
    return Attribute{rest[0], value};
  }

  // The value of the next attribute, which must be named `name`.
  std::optional<std::string_view> read(char name) {
    auto attr = next();
    if (!attr || attr->name != name) {
      return std::nullopt;
    }
    return attr->value;
  }

  bool at_end() const { return pos_ == text_.size(); }
  // Where the next separator (or the end) is; text before it has been read.
  std::size_t offset() const { return pos_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

Error malformed(std::string_view message, std::string_view detail) {
  return Error{Errc::Protocol,
               "malformed SCRAM " + std::string(message) + ": " + std::string(detail)};
}

// client-first-message = gs2-header client-first-message-bare
// gs2-header = ("n" / "y") "," [authzid] ","; bare = [reserved-mext ","] username "," nonce
// ["," extensions]. PostgreSQL rejects "p=" (we never offer SCRAM-SHA-256-PLUS) and authzid.
struct ClientFirst {
  std::string_view gs2_header;
  std::string_view bare;
  std::string_view nonce;
};

Result<ClientFirst> parse_client_first(std::string_view text) {
  constexpr std::string_view kWhat = "client-first-message";
  if (text.empty()) {
    return std::unexpected(malformed(kWhat, "empty"));
  }
  if (text[0] == 'p') {
    return std::unexpected(malformed(kWhat, "channel binding is not supported"));
  }
  if ((text[0] != 'n' && text[0] != 'y') || text.size() < 2 || text[1] != ',') {
    return std::unexpected(malformed(kWhat, "bad GS2 header"));
  }
  if (text.size() >= 4 && text.substr(2, 2) == "a=") {
    return std::unexpected(malformed(kWhat, "authorization identity is not supported"));
  }
  if (text.size() < 3 || text[2] != ',') {
    return std::unexpected(malformed(kWhat, "bad GS2 header"));
  }
  ClientFirst msg;
  msg.gs2_header = text.substr(0, 3);
  msg.bare = text.substr(3);
  if (msg.bare.starts_with("m=")) {
    return std::unexpected(malformed(kWhat, "unsupported mandatory extension"));
  }
  AttributeReader in(msg.bare);
  if (!in.read('n')) {  // the SCRAM user name: ignored, PostgreSQL uses the startup one
    return std::unexpected(malformed(kWhat, "expected attribute \"n\""));
  }
  const auto nonce = in.read('r');
  if (!nonce) {
    return std::unexpected(malformed(kWhat, "expected attribute \"r\""));
  }
  if (!is_printable_nonce(*nonce)) {
    return std::unexpected(malformed(kWhat, "invalid nonce"));
  }
  msg.nonce = *nonce;
  while (!in.at_end()) {  // optional extensions, ignored as PostgreSQL does
    if (!in.next()) {
      return std::unexpected(malformed(kWhat, "bad attribute"));
    }
  }
  return msg;
}

// client-final-message = channel-binding "," nonce ["," extensions] "," proof
struct ClientFinal {
  std::string_view channel_binding;  // base64 of the GS2 header
  std::string_view nonce;
  std::string_view without_proof;  // client-final-message-without-proof, for the AuthMessage
  ScramKey proof{};
};

Result<ClientFinal> parse_client_final(std::string_view text) {
  constexpr std::string_view kWhat = "client-final-message";
  AttributeReader in(text);
  ClientFinal msg;
  const auto binding = in.read('c');
  if (!binding) {
    return std::unexpected(malformed(kWhat, "expected attribute \"c\""));
  }
  msg.channel_binding = *binding;
  const auto nonce = in.read('r');
  if (!nonce) {
    return std::unexpected(malformed(kWhat, "expected attribute \"r\""));
  }
  msg.nonce = *nonce;
  std::optional<AttributeReader::Attribute> attr;
  do {  // skip extensions up to the proof, which must come last
    msg.without_proof = text.substr(0, in.offset());
    attr = in.next();
    if (!attr) {
      return std::unexpected(malformed(kWhat, "expected attribute \"p\""));
    }
  } while (attr->name != 'p');
  if (!in.at_end()) {
    return std::unexpected(malformed(kWhat, "garbage after the proof"));
  }
  const auto proof = decode_key(attr->value);
  if (!proof) {
    return std::unexpected(malformed(kWhat, "invalid ClientProof"));
  }
  msg.proof = *proof;
  return msg;
}

// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
// ["," extensions]. Like libpq, we accept no extensions here.
struct ServerFirst {
  std::string_view nonce;
  std::string salt;
  int iterations = 0;
};

Result<ServerFirst> parse_server_first(std::string_view text, std::string_view client_nonce) {
  constexpr std::string_view kWhat = "server-first-message";
  if (text.starts_with("m=")) {
    return std::unexpected(malformed(kWhat, "unsupported mandatory extension"));
  }
  AttributeReader in(text);
  ServerFirst msg;
  const auto nonce = in.read('r');
  if (!nonce) {
    return std::unexpected(malformed(kWhat, "expected attribute \"r\""));
  }
  // The server must extend our nonce, not replace or merely echo it.
  if (!nonce->starts_with(client_nonce) || nonce->size() == client_nonce.size() ||
      !is_printable_nonce(*nonce)) {
    return std::unexpected(malformed(kWhat, "nonce does not extend the client nonce"));
  }
  msg.nonce = *nonce;
  const auto salt = in.read('s');
  if (!salt) {
    return std::unexpected(malformed(kWhat, "expected attribute \"s\""));
  }
  auto raw_salt = base64_decode(*salt);
  if (!raw_salt || raw_salt->empty()) {
    return std::unexpected(malformed(kWhat, "invalid salt"));
  }
  msg.salt = std::move(*raw_salt);
  const auto iterations_text = in.read('i');
  if (!iterations_text) {
    return std::unexpected(malformed(kWhat, "expected attribute \"i\""));
  }
  const auto iterations = parse_iterations(*iterations_text);
  if (!iterations) {
    return std::unexpected(malformed(kWhat, "invalid iteration count"));
  }
  msg.iterations = *iterations;
  if (!in.at_end()) {
    return std::unexpected(malformed(kWhat, "garbage at the end"));
  }
  return msg;
}

// Escapes a SCRAM user name: ',' -> "=2C", '=' -> "=3D" (RFC 5802 saslname).
std::string escape_user(std::string_view user) {
  std::string out;
  for (const char c : user) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
  return out;
}

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

}  // namespace

// ---- Keys and verifiers ----

ScramKeys derive_scram_keys(std::string_view password, std::string_view salt, int iterations) {
  POOLER_CHECK(iterations >= 1 && iterations <= kScramMaxIterations,
               "SCRAM iteration count out of range");
  // SASLprep is not applied: the password is used as raw bytes (see scram.h).
  ScramKey salted{};
  const auto salt_bytes = as_bytes(salt);
  const int ok =
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt_bytes.data(),
                        static_cast<int>(salt_bytes.size()), iterations, EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data());
  POOLER_CHECK(ok == 1, "PBKDF2-HMAC-SHA-256 failed");
  ScramKeys keys;
  keys.client_key = hmac_sha256(salted, "Client Key");
  keys.stored_key = sha256(keys.client_key);
  keys.server_key = hmac_sha256(salted, "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  return keys;
}

namespace {

// PBKDF2 with PostgreSQL's 4,096 iterations costs milliseconds of the loop thread; every
// server connection of a pool logs in with the same password against the same salt, so a
// reconnect storm would pay it once per connection. A few recent derivations per thread,
// keyed by a digest of the password (the plaintext is not kept here).
struct DerivedKeys {
  ScramKey password_digest{};
  std::string salt;
  int iterations = 0;
  ScramKeys keys;
};
constexpr std::size_t kDerivedKeysKept = 8;
thread_local std::array<DerivedKeys, kDerivedKeysKept> t_derived;
thread_local std::size_t t_derived_next = 0;
thread_local std::uint64_t t_derivations = 0;

ScramKeys client_keys(std::string_view password, std::string_view salt, int iterations) {
  const ScramKey digest = sha256(as_bytes(password));
  for (const DerivedKeys& d : t_derived) {
    if (d.iterations == iterations && d.salt == salt && equal_keys(d.password_digest, digest)) {
      return d.keys;
    }
  }
  ++t_derivations;
  DerivedKeys& slot = t_derived[t_derived_next];
  t_derived_next = (t_derived_next + 1) % kDerivedKeysKept;
  slot.password_digest = digest;
  slot.salt = std::string(salt);
  slot.iterations = iterations;
  slot.keys = derive_scram_keys(password, salt, iterations);
  return slot.keys;
}

}  // namespace

std::uint64_t scram_client_derivations() { return t_derivations; }

ScramVerifier make_scram_verifier(std::string_view password, std::string_view salt,
                                  int iterations) {
  const ScramKeys keys = derive_scram_keys(password, salt, iterations);
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = std::string(salt);
  v.stored_key = keys.stored_key;
  v.server_key = keys.server_key;
  return v;
}

ScramVerifier scram_verifier_for_plaintext(std::string_view password) {
  std::string salt(kSaltLength, '\0');
  random_bytes({reinterpret_cast<std::uint8_t*>(salt.data()), salt.size()});
  return make_scram_verifier(password, salt, kScramDefaultIterations);
}

Result<ScramVerifier> parse_scram_verifier(std::string_view text) {
  const auto bad = [](std::string_view detail) {
    return fail(Errc::Protocol, "malformed SCRAM verifier: " + std::string(detail));
  };
  if (!text.starts_with(kVerifierPrefix)) {
    return bad("expected prefix \"SCRAM-SHA-256$\"");
  }
  const std::string_view body = text.substr(kVerifierPrefix.size());
  const std::size_t dollar = body.find('$');
  if (dollar == std::string_view::npos) {
    return bad("expected \"$\" before the keys");
  }
  const std::string_view params = body.substr(0, dollar);  // <iter>:<salt>
  const std::string_view keys = body.substr(dollar + 1);   // <StoredKey>:<ServerKey>
  const std::size_t colon1 = params.find(':');
  const std::size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) {
    return bad("expected \":\" separators");
  }
  ScramVerifier v;
  const auto iterations = parse_iterations(params.substr(0, colon1));
  if (!iterations) {
    return bad("invalid iteration count");
  }
  v.iterations = *iterations;
  auto salt = base64_decode(params.substr(colon1 + 1));
  if (!salt || salt->empty()) {
    return bad("invalid salt");
  }
  v.salt = std::move(*salt);
  const auto stored_key = decode_key(keys.substr(0, colon2));
  const auto server_key = decode_key(keys.substr(colon2 + 1));
  if (!stored_key || !server_key) {
    return bad("invalid StoredKey or ServerKey");
  }
  v.stored_key = *stored_key;
  v.server_key = *server_key;
  return v;
}

std::string format_scram_verifier(const ScramVerifier& v) {
  return std::string(kVerifierPrefix) + std::to_string(v.iterations) + ":" + base64_encode(v.salt) +
         "$" + base64_encode(v.stored_key) + ":" + base64_encode(v.server_key);
}

bool is_scram_verifier(std::string_view text) { return parse_scram_verifier(text).has_value(); }

// ---- base64 and randomness ----

std::string base64_encode(std::span<const std::uint8_t> data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < data.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, data.size() - i);
    std::uint32_t group = std::uint32_t{data[i]} << 16;
    if (n > 1) {
      group |= std::uint32_t{data[i + 1]} << 8;
    }
    if (n > 2) {
      group |= data[i + 2];
    }
    out += kBase64Alphabet[(group >> 18) & 63];
    out += kBase64Alphabet[(group >> 12) & 63];
    out += n > 1 ? kBase64Alphabet[(group >> 6) & 63] : '=';
    out += n > 2 ? kBase64Alphabet[group & 63] : '=';
  }
  return out;
}

std::string base64_encode(std::string_view data) { return base64_encode(as_bytes(data)); }

// Non-zero bits under the padding are accepted, as PostgreSQL's pg_b64_decode does.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last_group = i + 4 == text.size();
    std::uint32_t group = 0;
    int padding = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int value = 0;
      if (c == '=') {
        if (!last_group || j < 2) {
          return std::nullopt;
        }
        ++padding;
      } else {
        value = base64_value(c);
        if (value < 0 || padding > 0) {  // not in the alphabet, or data after '='
          return std::nullopt;
        }
      }
      group = (group << 6) | static_cast<std::uint32_t>(value);
    }
    out += static_cast<char>((group >> 16) & 0xff);
    if (padding < 2) {
      out += static_cast<char>((group >> 8) & 0xff);
    }
    if (padding < 1) {
      out += static_cast<char>(group & 0xff);
    }
  }
  return out;
}

void random_bytes(std::span<std::uint8_t> out) {
  if (out.empty()) {
    return;
  }
  // The kernel's generator: RAND_bytes cost about 30,000 instructions per call here
  // (callgrind), several calls per login. A predictable nonce, salt or cancel key would be
  // worse than stopping.
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    POOLER_CHECK(n > 0, "getrandom failed");
    done += static_cast<std::size_t>(n);
  }
}

// ---- ScramServer ----

ScramServer::ScramServer(ScramVerifier verifier) : verifier_(std::move(verifier)) {}

Result<std::string> ScramServer::on_client_first(std::string_view client_first) {
  if (step_ != Step::AwaitingClientFirst) {
    step_ = Step::Failed;
    return fail(Errc::Protocol, "unexpected SCRAM client-first-message");
  }
  auto msg = parse_client_first(client_first);
  if (!msg) {
    step_ = Step::Failed;
    return std::unexpected(std::move(msg.error()));
  }
  gs2_header_ = msg->gs2_header;
  client_first_bare_ = msg->bare;
  if (server_nonce_.empty()) {
    server_nonce_ = random_nonce();
  }
  full_nonce_ = std::string(msg->nonce) + server_nonce_;
  server_first_ = "r=" + full_nonce_ + ",s=" + base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  step_ = Step::AwaitingClientFinal;
  return server_first_;
}

Result<std::string> ScramServer::on_client_final(std::string_view client_final) {
  if (step_ != Step::AwaitingClientFinal) {
    step_ = Step::Failed;
    return fail(Errc::Protocol, "unexpected SCRAM client-final-message");
  }
  step_ = Step::Failed;  // until the proof checks out
  auto msg = parse_client_final(client_final);
  if (!msg) {
    return std::unexpected(std::move(msg.error()));
  }
  // Without channel binding, c= must repeat the GS2 header we saw ("biws" for "n,,").
  if (msg->channel_binding != base64_encode(gs2_header_)) {
    return fail(Errc::Protocol, "SCRAM channel binding check failed");
  }
  if (msg->nonce != full_nonce_) {
    return fail(Errc::Protocol, "malformed SCRAM client-final-message: nonce does not match");
  }
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(msg->without_proof);
  const ScramKey client_signature = hmac_sha256(verifier_.stored_key, auth_message);
  const ScramKey client_key = xor_keys(msg->proof, client_signature);
  if (!equal_keys(sha256(client_key), verifier_.stored_key)) {
    return fail(Errc::Auth, "password authentication failed");
  }
  client_key_ = client_key;
  step_ = Step::Done;
  return "v=" + base64_encode(hmac_sha256(verifier_.server_key, auth_message));
}

// ---- ScramClient ----

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {}

ScramClient::ScramClient(ScramKey client_key, ScramKey server_key) {
  keys_.client_key = client_key;
  keys_.stored_key = sha256(client_key);
  keys_.server_key = server_key;
}

std::string ScramClient::client_first() {
  if (client_nonce_.empty()) {
    client_nonce_ = random_nonce();
  }
  client_first_bare_ = "n=" + escape_user(user_) + ",r=" + client_nonce_;
  step_ = Step::AwaitingServerFirst;
  return "n,," + client_first_bare_;
}

Result<std::string> ScramClient::on_server_first(std::string_view server_first) {
  if (step_ != Step::AwaitingServerFirst) {
    step_ = Step::Failed;
    return fail(Errc::Protocol, "unexpected SCRAM server-first-message");
  }
  step_ = Step::Failed;
  auto msg = parse_server_first(server_first, client_nonce_);
  if (!msg) {
    return std::unexpected(std::move(msg.error()));
  }
  if (password_) {
    keys_ = client_keys(*password_, msg->salt, msg->iterations);
  }
  const std::string without_proof = "c=biws,r=" + std::string(msg->nonce);  // biws = "n,,"
  auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const ScramKey proof = xor_keys(keys_.client_key, hmac_sha256(keys_.stored_key, auth_message_));
  step_ = Step::AwaitingServerFinal;
  return without_proof + ",p=" + base64_encode(proof);
}

// server-final-message = (server-error / verifier) ["," extensions]; like libpq, no extensions.
Result<void> ScramClient::on_server_final(std::string_view server_final) {
  if (step_ != Step::AwaitingServerFinal) {
    step_ = Step::Failed;
    return fail(Errc::Protocol, "unexpected SCRAM server-final-message");
  }
  step_ = Step::Failed;
  AttributeReader in(server_final);
  const auto attr = in.next();
  if (attr && attr->name == 'e') {
    return fail(Errc::Auth,
                "error received from server in SCRAM exchange: " + std::string(attr->value));
  }
  if (!attr || attr->name != 'v' || !in.at_end()) {
    return fail(Errc::Protocol, "malformed SCRAM server-final-message: expected \"v\"");
  }
  const auto signature = decode_key(attr->value);
  if (!signature) {
    return fail(Errc::Protocol, "malformed SCRAM server-final-message: invalid ServerSignature");
  }
  if (!equal_keys(*signature, hmac_sha256(keys_.server_key, auth_message_))) {
    return fail(Errc::Auth, "incorrect server signature");
  }
  step_ = Step::Done;
  return {};
}

}  // namespace pooler::wire
