#include "pooler/wire/scram.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pooler::wire {
namespace {

// RFC 7677 section 3: SCRAM-SHA-256 with user "user" and password "pencil".
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSalt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Verifiers that PostgreSQL 15.18 stored for ALTER ROLE ... PASSWORD 'pencil' and 'sésame'
// (UTF-8, unchanged by SASLprep), read back from pg_authid.rolpassword.
constexpr std::string_view kPgPencilVerifier =
    "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==$TJM0LiClD5Xvd+jAMA34u+YMlDTrOMm9ULgJ0ANAjAY=:"
    "aRLYncaaBbzwXKxFkEmoub4l+TxbQm/0t2AnNmlh3Xs=";
constexpr std::string_view kPgSesameVerifier =
    "SCRAM-SHA-256$4096:i4/xdtyTMHTojX5oYGxrUw==$3yK/hOX/8a9j0NpQblda0+LgENRuEzyyDnoDYMBY94I=:"
    "hguUlY+tupoZ6oMQvAzAxkeM7ATokVnUhGyLzUmmGfQ=";

std::string rfc_salt() { return base64_decode(kRfcSalt).value(); }

// Computed once: PBKDF2 with 4096 iterations is the slow part of these tests.
const ScramVerifier& rfc_verifier() {
  static const ScramVerifier verifier = make_scram_verifier("pencil", rfc_salt(), 4096);
  return verifier;
}

// A server that has already answered the RFC client-first-message.
ScramServer rfc_server_after_first() {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_test(std::string(kRfcServerNonce));
  EXPECT_TRUE(server.on_client_first(kRfcClientFirst).has_value());
  return server;
}

// A client that has sent the RFC client-first-message.
ScramClient rfc_client_after_first() {
  ScramClient client("pencil");
  client.set_nonce_for_test(std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.client_first(), kRfcClientFirst);
  return client;
}

// The same, built from keys, so that it runs no PBKDF2 (for the fuzz loop).
ScramClient rfc_keys_client_after_first() {
  static const ScramKeys keys = derive_scram_keys("pencil", rfc_salt(), 4096);
  ScramClient client(keys.client_key, keys.server_key);
  client.set_nonce_for_test(std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.client_first(), kRfcClientFirst);
  return client;
}

struct Exchange {
  Result<std::string> server_first;
  Result<std::string> client_final;
  Result<std::string> server_final;
  Result<void> client_done;
};

// Runs a whole exchange, stopping at the first failure.
Exchange run_exchange(ScramServer& server, ScramClient& client) {
  Exchange ex{fail(Errc::Internal, "not run"), fail(Errc::Internal, "not run"),
              fail(Errc::Internal, "not run"), fail(Errc::Internal, "not run")};
  ex.server_first = server.on_client_first(client.client_first());
  if (!ex.server_first) {
    return ex;
  }
  ex.client_final = client.on_server_first(*ex.server_first);
  if (!ex.client_final) {
    return ex;
  }
  ex.server_final = server.on_client_final(*ex.client_final);
  if (!ex.server_final) {
    return ex;
  }
  ex.client_done = client.on_server_final(*ex.server_final);
  return ex;
}

// ---- base64 ----

// base64 follows the RFC 4648 test vectors, with padding, both ways.
TEST(ScramBase64Test, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [raw, encoded] : cases) {
    EXPECT_EQ(base64_encode(raw), encoded);
    EXPECT_EQ(base64_decode(encoded), raw) << encoded;
  }
  const std::vector<std::uint8_t> binary = {0x00, 0xff, 0xfe, 0x80, 0x7f};
  EXPECT_EQ(base64_encode(binary), "AP/+gH8=");
  EXPECT_EQ(base64_decode("AP/+gH8="), std::string("\x00\xff\xfe\x80\x7f", 5));
}

// The decoder rejects bad length, characters outside the alphabet and misplaced padding.
TEST(ScramBase64Test, RejectsInvalid) {
  const std::vector<std::string_view> bad_inputs = {"Zg",
                                                    "Zg=",
                                                    "Zm9",
                                                    "Z===",
                                                    "====",
                                                    "Zg==Zg==",
                                                    "Zm9v!AAA",
                                                    " Zm9v",
                                                    "Zm9v\n",
                                                    "Zg=a",
                                                    "Z=g=",
                                                    "Zm-_",
                                                    std::string_view("Zm\0v", 4)};
  for (const std::string_view bad : bad_inputs) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

// ---- RFC 7677 test vector ----

// Keys derived from "pencil" reproduce the RFC exchange, server side.
TEST(ScramServerTest, Rfc7677Vector) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_test(std::string(kRfcServerNonce));
  auto server_first = server.on_client_first(kRfcClientFirst);
  ASSERT_TRUE(server_first.has_value()) << server_first.error().message;
  EXPECT_EQ(*server_first, kRfcServerFirst);
  auto server_final = server.on_client_final(kRfcClientFinal);
  ASSERT_TRUE(server_final.has_value()) << server_final.error().message;
  EXPECT_EQ(*server_final, kRfcServerFinal);
  EXPECT_TRUE(server.authenticated());
}

// The client reproduces the RFC exchange and accepts the RFC server signature.
TEST(ScramClientTest, Rfc7677Vector) {
  ScramClient client = rfc_client_after_first();
  auto client_final = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final.has_value()) << client_final.error().message;
  EXPECT_EQ(*client_final, kRfcClientFinal);
  auto done = client.on_server_final(kRfcServerFinal);
  EXPECT_TRUE(done.has_value()) << done.error().message;
}

// By default the client sends an empty user name and an 18-byte random nonce, like libpq.
TEST(ScramClientTest, ClientFirstHasEmptyUserAndRandomNonce) {
  ScramClient a("pw");
  ScramClient b("pw");
  const std::string first_a = a.client_first();
  const std::string first_b = b.client_first();
  ASSERT_TRUE(first_a.starts_with("n,,n=,r="));
  const std::string nonce = first_a.substr(8);
  EXPECT_EQ(nonce.size(), 24u);
  EXPECT_EQ(base64_decode(nonce).value_or("").size(), 18u);
  EXPECT_NE(first_a, first_b);
}

// ---- round trips ----

// A client with the right password logs in to a server holding a verifier for it.
TEST(ScramRoundTripTest, RightPassword) {
  ScramServer server(scram_verifier_for_plaintext("correct horse"));
  ScramClient client("correct horse");
  const Exchange ex = run_exchange(server, client);
  ASSERT_TRUE(ex.server_final.has_value()) << ex.server_final.error().message;
  EXPECT_TRUE(ex.client_done.has_value()) << ex.client_done.error().message;
  EXPECT_TRUE(server.authenticated());
}

// A pool's server connections log in with one password against one salt: PBKDF2 runs
// once, the later logins reuse its keys. Another salt or password derives again, and a
// wrong password is never taken for a cached right one.
TEST(ScramRoundTripTest, RepeatedLoginsDeriveOnce) {
  const ScramVerifier verifier = scram_verifier_for_plaintext("pool password");
  const std::uint64_t before = scram_client_derivations();
  for (int i = 0; i < 3; ++i) {
    ScramServer server(verifier);
    ScramClient client("pool password");
    const Exchange ex = run_exchange(server, client);
    ASSERT_TRUE(ex.client_done.has_value()) << ex.client_done.error().message;
    EXPECT_TRUE(server.authenticated());
  }
  EXPECT_EQ(scram_client_derivations() - before, 1u);

  ScramServer other_salt(scram_verifier_for_plaintext("pool password"));
  ScramClient again("pool password");
  EXPECT_TRUE(run_exchange(other_salt, again).client_done.has_value());
  EXPECT_EQ(scram_client_derivations() - before, 2u);

  ScramServer server(verifier);
  ScramClient wrong("pool passworD");
  const Exchange ex = run_exchange(server, wrong);
  EXPECT_FALSE(ex.server_final.has_value());
  EXPECT_FALSE(server.authenticated());
  EXPECT_EQ(scram_client_derivations() - before, 3u);
}

// A wrong password fails at the server with Errc::Auth and the PostgreSQL wording.
TEST(ScramRoundTripTest, WrongPassword) {
  ScramServer server(scram_verifier_for_plaintext("correct horse"));
  ScramClient client("battery staple");
  const Exchange ex = run_exchange(server, client);
  ASSERT_TRUE(ex.client_final.has_value());
  ASSERT_FALSE(ex.server_final.has_value());
  EXPECT_EQ(ex.server_final.error().code, Errc::Auth);
  EXPECT_EQ(ex.server_final.error().message, "password authentication failed");
  EXPECT_FALSE(server.authenticated());
  EXPECT_EQ(server.client_key(), ScramKey{});
  // The server is done with this exchange: a retry is out of order.
  auto again = server.on_client_final(*ex.client_final);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::Protocol);
}

// The empty password and a non-ASCII one work as raw bytes.
TEST(ScramRoundTripTest, EmptyAndNonAsciiPasswords) {
  for (const std::string_view pw : {std::string_view(""), std::string_view("s\xc3\xa9same")}) {
    ScramServer server(scram_verifier_for_plaintext(pw));
    ScramClient client{std::string(pw)};
    const Exchange ex = run_exchange(server, client);
    EXPECT_TRUE(ex.client_done.has_value()) << "password: " << pw;
  }
}

// The ClientKey the server recovers from the proof is the one derived from the password.
TEST(ScramRoundTripTest, RecoveredClientKeyEqualsDerived) {
  const std::string salt = "0123456789abcdef";
  ScramServer server(make_scram_verifier("hunter2", salt, 4096));
  ScramClient client("hunter2");
  ASSERT_TRUE(run_exchange(server, client).client_done.has_value());
  const ScramKeys keys = derive_scram_keys("hunter2", salt, 4096);
  EXPECT_EQ(server.client_key(), keys.client_key);
}

// pgmux's use of client_key(): log in to a second server holding the same verifier, keys only.
TEST(ScramRoundTripTest, RecoveredKeysLogInToSameVerifier) {
  const ScramVerifier verifier = scram_verifier_for_plaintext("hunter2");
  ScramServer front(verifier);
  ScramClient app("hunter2");
  ASSERT_TRUE(run_exchange(front, app).client_done.has_value());

  ScramServer backend(verifier);
  ScramClient pooler(front.client_key(), verifier.server_key);
  const Exchange ex = run_exchange(backend, pooler);
  EXPECT_TRUE(ex.server_final.has_value());
  EXPECT_TRUE(ex.client_done.has_value());
}

// Keys only cannot log in where the verifier has another salt: the server refuses the proof.
TEST(ScramRoundTripTest, KeysFailAgainstDifferentSalt) {
  const ScramKeys keys = derive_scram_keys("hunter2", "salt-one", 4096);
  ScramServer server(make_scram_verifier("hunter2", "salt-two", 4096));
  ScramClient client(keys.client_key, keys.server_key);
  const Exchange ex = run_exchange(server, client);
  ASSERT_FALSE(ex.server_final.has_value());
  EXPECT_EQ(ex.server_final.error().code, Errc::Auth);
}

// With the same salt, iterations and nonces, a client built from keys sends the same
// client-final-message as one built from the plaintext.
TEST(ScramClientTest, FromKeysMatchesFromPlaintext) {
  const ScramKeys keys = derive_scram_keys("pencil", rfc_salt(), 4096);
  ScramClient from_keys(keys.client_key, keys.server_key);
  from_keys.set_nonce_for_test(std::string(kRfcClientNonce), "user");
  EXPECT_EQ(from_keys.client_first(), kRfcClientFirst);
  auto final_from_keys = from_keys.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_from_keys.has_value());

  ScramClient from_plaintext = rfc_client_after_first();
  auto final_from_plaintext = from_plaintext.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(final_from_plaintext.has_value());

  EXPECT_EQ(*final_from_keys, *final_from_plaintext);
  EXPECT_EQ(*final_from_keys, kRfcClientFinal);
  EXPECT_TRUE(from_keys.on_server_final(kRfcServerFinal).has_value());
}

// The client rejects a wrong server signature and reports a server "e=" error as Errc::Auth.
TEST(ScramClientTest, RejectsWrongServerSignatureAndServerError) {
  {
    ScramClient client = rfc_client_after_first();
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
    auto done = client.on_server_final("v=" + base64_encode(std::string(32, 'x')));
    ASSERT_FALSE(done.has_value());
    EXPECT_EQ(done.error().code, Errc::Auth);
  }
  {
    ScramClient client = rfc_client_after_first();
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
    auto done = client.on_server_final("e=invalid-proof");
    ASSERT_FALSE(done.has_value());
    EXPECT_EQ(done.error().code, Errc::Auth);
    EXPECT_NE(done.error().message.find("invalid-proof"), std::string::npos);
  }
}

// A client that said "y" (supports channel binding, thinks we do not) must repeat it in c=.
TEST(ScramServerTest, AcceptsGs2HeaderY) {
  ScramServer server(rfc_verifier());
  server.set_nonce_for_test(std::string(kRfcServerNonce));
  ASSERT_TRUE(server.on_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").has_value());
  // The RFC proof was computed for c=biws, so "eSws" (= "y,,") passes the binding check and
  // reaches the proof check; "biws" is a binding mismatch.
  std::string with_y(kRfcClientFinal);
  with_y.replace(2, 4, "eSws");
  auto result = server.on_client_final(with_y);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, Errc::Auth);

  ScramServer mismatch(rfc_verifier());
  mismatch.set_nonce_for_test(std::string(kRfcServerNonce));
  ASSERT_TRUE(mismatch.on_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").has_value());
  auto mismatched = mismatch.on_client_final(kRfcClientFinal);
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_EQ(mismatched.error().code, Errc::Protocol);
}

// Extensions after the nonce in client-first-message are ignored, as PostgreSQL does.
TEST(ScramServerTest, IgnoresClientFirstExtensions) {
  ScramServer server(rfc_verifier());
  EXPECT_TRUE(server.on_client_first("n,,n=user,r=abc,x=1,y=2").has_value());
}

// ---- verifiers ----

// format and parse are inverses, and the text has PostgreSQL's layout.
TEST(ScramVerifierTest, FormatParseRoundTrip) {
  const ScramVerifier v = rfc_verifier();
  const std::string text = format_scram_verifier(v);
  EXPECT_TRUE(text.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")) << text;
  EXPECT_TRUE(is_scram_verifier(text));
  auto parsed = parse_scram_verifier(text);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(parsed->salt, rfc_salt());
  EXPECT_EQ(parsed->stored_key, v.stored_key);
  EXPECT_EQ(parsed->server_key, v.server_key);
  EXPECT_EQ(format_scram_verifier(*parsed), text);
}

// make_scram_verifier reproduces verifiers stored by PostgreSQL 15 from their salt.
TEST(ScramVerifierTest, MatchesPostgres15) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {kPgPencilVerifier, "pencil"}, {kPgSesameVerifier, "s\xc3\xa9same"}};
  for (const auto& [text, password] : cases) {
    auto parsed = parse_scram_verifier(text);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->iterations, 4096);
    EXPECT_EQ(parsed->salt.size(), 16u);
    const ScramVerifier made = make_scram_verifier(password, parsed->salt, parsed->iterations);
    EXPECT_EQ(format_scram_verifier(made), text);
  }
}

// A server holding a PostgreSQL-made verifier authenticates the right password only.
TEST(ScramVerifierTest, PostgresVerifierAuthenticates) {
  const ScramVerifier v = parse_scram_verifier(kPgPencilVerifier).value();
  ScramServer good_server(v);
  ScramClient good("pencil");
  EXPECT_TRUE(run_exchange(good_server, good).client_done.has_value());
  ScramServer bad_server(v);
  ScramClient bad("pencil!");
  EXPECT_EQ(run_exchange(bad_server, bad).server_final.error().code, Errc::Auth);
}

// Each malformed verifier is rejected with Errc::Protocol.
TEST(ScramVerifierTest, RejectsMalformed) {
  const std::string keys =
      "$TJM0LiClD5Xvd+jAMA34u+YMlDTrOMm9ULgJ0ANAjAY=:"
      "aRLYncaaBbzwXKxFkEmoub4l+TxbQm/0t2AnNmlh3Xs=";
  const std::vector<std::string> bad = {
      "",
      "md56a422f785c9e20873908ce25d1736ae2",
      "SCRAM-SHA-1$4096:DAkeVnadO2nr5bJemgL6Pg==" + keys,
      "scram-sha-256$4096:DAkeVnadO2nr5bJemgL6Pg==" + keys,
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==",                         // no keys
      "SCRAM-SHA-256$4096DAkeVnadO2nr5bJemgL6Pg==" + keys,                   // no ':'
      "SCRAM-SHA-256$:DAkeVnadO2nr5bJemgL6Pg==" + keys,                      // no iterations
      "SCRAM-SHA-256$0:DAkeVnadO2nr5bJemgL6Pg==" + keys,                     // zero iterations
      "SCRAM-SHA-256$-1:DAkeVnadO2nr5bJemgL6Pg==" + keys,                    // negative
      "SCRAM-SHA-256$10000001:DAkeVnadO2nr5bJemgL6Pg==" + keys,              // too many
      "SCRAM-SHA-256$99999999999999999999:DAkeVnadO2nr5bJemgL6Pg==" + keys,  // overflow
      "SCRAM-SHA-256$4096x:DAkeVnadO2nr5bJemgL6Pg==" + keys,                 // trailing junk
      "SCRAM-SHA-256$4096:" + keys,                                          // empty salt
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg=" + keys,                   // bad base64 salt
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==$AAAA:AAAA",               // short keys
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==$TJM0LiClD5Xvd+jAMA34u+YMlDTrOMm9ULgJ0ANAjAY=",
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==" + keys + "x",  // bad base64 key
      "SCRAM-SHA-256$4096:DAkeVnadO2nr5bJemgL6Pg==" + keys + "$",  // extra field
  };
  for (const std::string& text : bad) {
    auto parsed = parse_scram_verifier(text);
    ASSERT_FALSE(parsed.has_value()) << text;
    EXPECT_EQ(parsed.error().code, Errc::Protocol) << text;
    EXPECT_FALSE(is_scram_verifier(text)) << text;
  }
  EXPECT_TRUE(parse_scram_verifier("SCRAM-SHA-256$10000000:DAkeVnadO2nr5bJemgL6Pg==" + keys));
}

// ---- malformed messages ----

// Each malformed client-first-message is rejected with Errc::Protocol.
TEST(ScramServerTest, RejectsMalformedClientFirst) {
  const std::vector<std::string_view> bad = {
      "",
      "n",
      "n,",
      "n,,",
      "x,,n=user,r=abc",                   // unknown GS2 flag
      "p=tls-server-end-point,,n=,r=abc",  // channel binding requested
      "n,a=admin,n=user,r=abc",            // authorization identity
      "n,x,n=user,r=abc",                  // garbage authzid
      "n,,m=ext,n=user,r=abc",             // mandatory extension
      "n,,r=abc",                          // missing user
      "n,,n=user",                         // missing nonce
      "n,,n=user,",                        // trailing comma
      "n,,r=abc,n=user",                   // wrong order
      "n,,n=user,r=",                      // empty nonce
      "n,,n=user,r=a b",                   // non-printable nonce
      "n,,n=user,r=abc,",                  // trailing comma after nonce
      "n,,n=user,r=abc,1=x",               // extension name not a letter
      "n,,n=user,r=abc,xy",                // extension without '='
      "n,,N=user,r=abc",                   // attribute names are case-sensitive
  };
  for (const std::string_view text : bad) {
    ScramServer server(rfc_verifier());
    auto result = server.on_client_first(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::Protocol) << text;
  }
}

// Each malformed client-final-message is rejected with Errc::Protocol, never Errc::Auth.
TEST(ScramServerTest, RejectsMalformedClientFinal) {
  const std::string nonce = std::string(kRfcClientNonce) + std::string(kRfcServerNonce);
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::vector<std::string> bad = {
      "",
      "c=biws",
      "c=biws,r=" + nonce,                                       // no proof
      "r=" + nonce + ",c=biws," + proof,                         // wrong order
      "c=biws," + proof + ",r=" + nonce,                         // proof before nonce
      "c=biws,r=" + nonce + "," + proof + ",x=1",                // proof not last
      "c=biws,r=" + nonce + "," + proof + ",",                   // trailing comma
      "c=cD10bHMtdW5pcXVlLCw=,r=" + nonce + "," + proof,         // channel binding data
      "c=,r=" + nonce + "," + proof,                             // empty channel binding
      "c=biws,r=" + std::string(kRfcClientNonce) + "," + proof,  // client nonce only
      "c=biws,r=" + nonce + "x," + proof,                        // nonce changed
      "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",   // bad base64
      "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",  // 31 bytes
      "c=biws,r=" + nonce + ",p=" + base64_encode(std::string(33, 'x')),        // 33 bytes
      "c=biws,r=" + nonce + ",p=",                                              // empty proof
  };
  for (const std::string& text : bad) {
    ScramServer server = rfc_server_after_first();
    auto result = server.on_client_final(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::Protocol) << text;
    EXPECT_FALSE(server.authenticated());
  }
}

// An extension before the proof is allowed, and it is part of the signed message.
TEST(ScramServerTest, ExtensionBeforeProofIsSigned) {
  ScramServer server = rfc_server_after_first();
  std::string with_extension(kRfcClientFinal);
  with_extension.insert(with_extension.find(",p="), ",x=ext");
  auto result = server.on_client_final(with_extension);
  ASSERT_FALSE(result.has_value());  // the RFC proof does not cover ",x=ext"
  EXPECT_EQ(result.error().code, Errc::Auth);
}

// Each malformed server-first-message is rejected with Errc::Protocol.
TEST(ScramClientTest, RejectsMalformedServerFirst) {
  const std::string nonce = std::string(kRfcClientNonce) + std::string(kRfcServerNonce);
  const std::string salt = "s=" + std::string(kRfcSalt);
  const std::vector<std::string> bad = {
      "",
      "r=" + nonce,                                                     // no salt
      "r=" + nonce + "," + salt,                                        // no iterations
      "r=" + nonce + "," + salt + ",",                                  // trailing comma
      salt + ",r=" + nonce + ",i=4096",                                 // wrong order
      "r=" + nonce + ",i=4096," + salt,                                 // wrong order
      "m=ext,r=" + nonce + "," + salt + ",i=4096",                      // mandatory extension
      "r=" + nonce + "," + salt + ",i=4096,x=1",                        // extension (libpq: no)
      "r=" + std::string(kRfcClientNonce) + "," + salt + ",i=4096",     // nonce not extended
      "r=XXX" + std::string(kRfcServerNonce) + "," + salt + ",i=4096",  // foreign nonce
      "r=rOprNGfwEbeRWgbNEkq," + salt + ",i=4096",                      // shorter nonce
      "r=" + nonce + " x," + salt + ",i=4096",                          // non-printable nonce
      "r=" + nonce + ",s=,i=4096",                                      // empty salt
      "r=" + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",               // bad base64 salt
      "r=" + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=",                  // empty iterations
      "r=" + nonce + "," + salt + ",i=0",
      "r=" + nonce + "," + salt + ",i=-4096",
      "r=" + nonce + "," + salt + ",i=+4096",
      "r=" + nonce + "," + salt + ",i= 4096",
      "r=" + nonce + "," + salt + ",i=4096x",
      "r=" + nonce + "," + salt + ",i=10000001",                 // huge
      "r=" + nonce + "," + salt + ",i=2147483648",               // overflow
      "r=" + nonce + "," + salt + ",i=99999999999999999999999",  // overflow
  };
  for (const std::string& text : bad) {
    ScramClient client = rfc_client_after_first();
    auto result = client.on_server_first(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::Protocol) << text;
  }
}

// Each malformed server-final-message is rejected with Errc::Protocol.
TEST(ScramClientTest, RejectsMalformedServerFinal) {
  const std::vector<std::string> bad = {
      "",
      "v=",
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",  // bad base64
      "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",     // short
      std::string(kRfcServerFinal) + ",x=1",            // trailing attribute
      std::string(kRfcServerFinal) + ",",               // trailing comma
      "x=" + std::string(kRfcServerFinal.substr(2)),    // wrong attribute
      "V=" + std::string(kRfcServerFinal.substr(2)),    // wrong case
  };
  for (const std::string& text : bad) {
    ScramClient client = rfc_client_after_first();
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
    auto result = client.on_server_final(text);
    ASSERT_FALSE(result.has_value()) << text;
    EXPECT_EQ(result.error().code, Errc::Protocol) << text;
  }
}

// Messages out of order are protocol errors on both sides.
TEST(ScramStateTest, OutOfOrderIsProtocolError) {
  {
    ScramServer server(rfc_verifier());
    auto result = server.on_client_final(kRfcClientFinal);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, Errc::Protocol);
  }
  {
    ScramServer server = rfc_server_after_first();
    auto result = server.on_client_first(kRfcClientFirst);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, Errc::Protocol);
  }
  {
    ScramClient client("pencil");
    auto result = client.on_server_first(kRfcServerFirst);  // before client_first()
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, Errc::Protocol);
  }
  {
    ScramClient client = rfc_client_after_first();
    auto result = client.on_server_final(kRfcServerFinal);  // before on_server_first
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, Errc::Protocol);
  }
}

// Every proper prefix of a valid client-final or server-final message is a protocol error.
TEST(ScramFuzzTest, TruncatedFinalMessages) {
  for (std::size_t cut = 0; cut < kRfcClientFinal.size(); ++cut) {
    ScramServer server = rfc_server_after_first();
    auto result = server.on_client_final(kRfcClientFinal.substr(0, cut));
    ASSERT_FALSE(result.has_value()) << "cut=" << cut;
    EXPECT_EQ(result.error().code, Errc::Protocol) << "cut=" << cut;
  }
  for (std::size_t cut = 0; cut < kRfcServerFinal.size(); ++cut) {
    ScramClient client = rfc_keys_client_after_first();
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).has_value());
    auto result = client.on_server_final(kRfcServerFinal.substr(0, cut));
    ASSERT_FALSE(result.has_value()) << "cut=" << cut;
    EXPECT_EQ(result.error().code, Errc::Protocol) << "cut=" << cut;
  }
}

// Random bytes and mutated valid messages never crash any parser.
TEST(ScramFuzzTest, GarbageNeverCrashes) {
  constexpr unsigned kSeed = 20240607;
  SCOPED_TRACE(::testing::Message() << "seed=" << kSeed);
  std::mt19937 rng(kSeed);
  const std::vector<std::string_view> seeds = {kRfcClientFirst, kRfcServerFirst, kRfcClientFinal,
                                               kRfcServerFinal};
  const std::string alphabet("nyrpcsiv=,$%+/ab01\0\xff", 20);
  for (int round = 0; round < 2000; ++round) {
    std::string text(seeds[round % seeds.size()]);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1);
          break;
        case 2:
          text.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
    }
    ScramServer server(rfc_verifier());
    (void)server.on_client_first(text);
    ScramServer server2 = rfc_server_after_first();
    if (server2.on_client_final(text)) {
      EXPECT_EQ(text, kRfcClientFinal);  // only the original can pass
    }
    ScramClient client = rfc_keys_client_after_first();
    auto client_final = client.on_server_first(text);
    if (client_final && text != kRfcServerFirst) {
      // Still well formed (e.g. another iteration count): must then be a valid final message.
      EXPECT_TRUE(client_final->starts_with("c=biws,r="));
    }
    ScramClient client2 = rfc_keys_client_after_first();
    ASSERT_TRUE(client2.on_server_first(kRfcServerFirst).has_value());
    if (client2.on_server_final(text)) {
      EXPECT_EQ(text, kRfcServerFinal);
    }
    (void)parse_scram_verifier(text);
    (void)base64_decode(text);
  }
}

}  // namespace
}  // namespace pooler::wire
