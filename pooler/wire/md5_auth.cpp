#include "pooler/wire/md5_auth.h"

#include <openssl/evp.h>

#include <array>

#include "pooler/base/check.h"

namespace pooler::wire {
namespace {

constexpr std::string_view kMd5Prefix = "md5";
constexpr std::size_t kMd5HexLength = 32;

}  // namespace

std::string md5_hex(std::string_view data) {
  // EVP_Digest rather than MD5(), which OpenSSL 3 deprecates.
  std::array<unsigned char, 16> digest{};
  unsigned int length = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_md5(), nullptr);
  POOLER_CHECK(ok == 1 && length == digest.size(), "MD5 failed");
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  out.reserve(kMd5HexLength);
  for (const unsigned char byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0x0f];
  }
  return out;
}

std::string md5_password_hash(std::string_view password, std::string_view user) {
  std::string input(password);
  input += user;
  return std::string(kMd5Prefix) + md5_hex(input);
}

std::string md5_salted_response(std::string_view stored, std::string_view user,
                                std::span<const std::uint8_t, 4> salt) {
  std::string input = is_md5_hash(stored)
                          ? std::string(stored.substr(kMd5Prefix.size()))
                          : md5_password_hash(stored, user).substr(kMd5Prefix.size());
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return std::string(kMd5Prefix) + md5_hex(input);
}

bool is_md5_hash(std::string_view text) {
  if (text.size() != kMd5Prefix.size() + kMd5HexLength || !text.starts_with(kMd5Prefix)) {
    return false;
  }
  for (const char c : text.substr(kMd5Prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace pooler::wire
