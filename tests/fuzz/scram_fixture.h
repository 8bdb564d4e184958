#pragma once
// The SCRAM-SHA-256 example of RFC 7677 section 3 (user "user", password "pencil"), so that the
// seed corpus holds exchanges that succeed: with these nonces the RFC's messages verify.

#include <string>

#include "pooler/wire/scram.h"

namespace pooler::fuzz {

inline constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
inline constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

// The verifier for "pencil" with the RFC's salt and 4096 iterations. PBKDF2 runs once per
// process, not per input.
inline const wire::ScramVerifier& rfc_verifier() {
  static const wire::ScramVerifier v = [] {
    const auto salt = wire::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    return wire::make_scram_verifier("pencil", salt.value_or(std::string{}), 4096);
  }();
  return v;
}

inline const wire::ScramKeys& rfc_keys() {
  static const wire::ScramKeys k = [] {
    const auto salt = wire::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    return wire::derive_scram_keys("pencil", salt.value_or(std::string{}), 4096);
  }();
  return k;
}

}  // namespace pooler::fuzz
