#pragma once
// MD5 password authentication as PostgreSQL speaks it (AuthenticationMD5Password, B 'R' code 5,
// answered by a PasswordMessage, F 'p'). Pure computation: no sockets, no logging.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pooler::wire {

// Lowercase hex MD5 of `data`.
std::string md5_hex(std::string_view data);

// "md5" + md5_hex(password + user): what PostgreSQL stores in pg_authid.rolpassword.
std::string md5_password_hash(std::string_view password, std::string_view user);

// What a client sends for AuthenticationMD5Password:
// "md5" + md5_hex(md5_hex(password + user) + salt). `stored` is either the plaintext password
// or an "md5<32 hex>" stored hash; a plaintext that looks like such a hash is taken as one,
// as PostgreSQL and PgBouncer do.
std::string md5_salted_response(std::string_view stored, std::string_view user,
                                std::span<const std::uint8_t, 4> salt);

// "md5" followed by exactly 32 lowercase hex digits.
bool is_md5_hash(std::string_view text);

}  // namespace pooler::wire
