#include "pooler/wire/md5_auth.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace pooler::wire {
namespace {

constexpr std::array<std::uint8_t, 4> kSalt = {0x01, 0x02, 0x03, 0x04};

// md5_hex matches the RFC 1321 test suite.
TEST(Md5AuthTest, Md5HexKnownValues) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
}

// The stored hash is "md5" + md5(password + user): `echo -n secretapp | md5sum`, and also what
// PostgreSQL 15 stored for CREATE ROLE app PASSWORD 'secret' with password_encryption=md5.
TEST(Md5AuthTest, PasswordHashMatchesMd5sumAndPostgres) {
  EXPECT_EQ(md5_password_hash("secret", "app"), "md56a422f785c9e20873908ce25d1736ae2");
}

// The salted response is the same whether computed from the plaintext or the stored hash.
TEST(Md5AuthTest, SaltedResponseFromPlaintextEqualsFromStoredHash) {
  const std::string from_plaintext = md5_salted_response("secret", "app", kSalt);
  const std::string from_hash =
      md5_salted_response("md56a422f785c9e20873908ce25d1736ae2", "app", kSalt);
  EXPECT_EQ(from_plaintext, from_hash);
  // md5(md5("secretapp") hex + salt bytes), computed independently with Python's hashlib.
  EXPECT_EQ(from_plaintext, "md5911f527656472583a006e7727877b33e");
  EXPECT_TRUE(is_md5_hash(from_plaintext));
}

// Salt bytes are binary: zero and high bytes are hashed as they are.
TEST(Md5AuthTest, SaltedResponseWithBinarySalt) {
  constexpr std::array<std::uint8_t, 4> salt = {0x00, 0xff, 0x80, 0x7f};
  EXPECT_EQ(md5_salted_response("secret", "app", salt), "md522e6636b9310015d31d35cad85b61162");
}

// A different salt or user changes the response.
TEST(Md5AuthTest, SaltedResponseDependsOnSaltAndUser) {
  constexpr std::array<std::uint8_t, 4> other_salt = {0x01, 0x02, 0x03, 0x05};
  const std::string base = md5_salted_response("secret", "app", kSalt);
  EXPECT_NE(base, md5_salted_response("secret", "app", other_salt));
  EXPECT_NE(base, md5_salted_response("secret", "app2", kSalt));
  EXPECT_NE(base, md5_salted_response("secret2", "app", kSalt));
}

// is_md5_hash accepts only "md5" + 32 lowercase hex digits.
TEST(Md5AuthTest, IsMd5Hash) {
  EXPECT_TRUE(is_md5_hash("md56a422f785c9e20873908ce25d1736ae2"));
  EXPECT_FALSE(is_md5_hash("md56A422F785C9E20873908CE25D1736AE2"));   // uppercase
  EXPECT_FALSE(is_md5_hash("MD56a422f785c9e20873908ce25d1736ae2"));   // prefix case
  EXPECT_FALSE(is_md5_hash("md56a422f785c9e20873908ce25d1736ae"));    // short
  EXPECT_FALSE(is_md5_hash("md56a422f785c9e20873908ce25d1736ae22"));  // long
  EXPECT_FALSE(is_md5_hash("md56a422f785c9e20873908ce25d1736aeg"));   // not hex
  EXPECT_FALSE(is_md5_hash("6a422f785c9e20873908ce25d1736ae2"));      // no prefix
  EXPECT_FALSE(is_md5_hash(""));
  EXPECT_FALSE(is_md5_hash("secret"));
}

}  // namespace
}  // namespace pooler::wire
