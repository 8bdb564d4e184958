#pragma once
// Who may connect: the limits that protect pgmux and PostgreSQL from one noisy client
// address or user (the "bot problem"). Shared by every worker, so behind one mutex; taken
// once per connection and once per login, never per query.
//
//   max_client_conn_per_address      connections open from one address
//   max_connection_rate_per_address  new connections per second from one address
//                                    (token bucket, burst = the rate)
//   max_login_failures_per_address   failed logins per minute from one address; beyond
//                                    it, the address's new connections are refused
//   max_user_client_connections      clients logged in as one user

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pooler::app {

// Why a connection or login is refused; the index of its counter.
enum class Refusal : std::uint8_t {
  MaxClientConn,  // max_client_conn
  AddressConns,   // max_client_conn_per_address
  AddressRate,    // max_connection_rate_per_address
  LoginFailures,  // max_login_failures_per_address
  UserConns,      // max_user_client_connections
  QueryRate,      // max_user_query_rate: a request waited too long
};
inline constexpr std::size_t kRefusalKinds = 6;
std::string_view to_string(Refusal r);  // "max_client_conn", "address_connections", ...

struct AdmissionLimits {
  int max_per_address = 0;          // 0 = no limit
  double max_rate_per_address = 0;  // per second
  int max_login_failures = 0;       // per minute and address
};

class Admission {
 public:
  // A new connection from `address` (no port). Counts it unless refused.
  std::optional<Refusal> admit_address(std::string_view address, const AdmissionLimits& limits,
                                       std::uint64_t now_ms);
  void release_address(std::string_view address);
  void note_login_failure(std::string_view address, std::uint64_t now_ms);

  // A login as `user`; `limit` 0 = none. Counts it unless refused.
  bool admit_user(std::string_view user, int limit);
  void release_user(std::string_view user);

 private:
  struct Address {
    int connections = 0;
    double tokens = 0;
    std::uint64_t tokens_at_ms = 0;
    int failures = 0;  // in the current minute
    std::uint64_t failures_since_ms = 0;
  };
  void sweep(std::uint64_t now_ms);

  std::mutex mutex_;
  std::unordered_map<std::string, Address> addresses_;
  std::unordered_map<std::string, int> users_;
  std::uint64_t admits_ = 0;
};

}  // namespace pooler::app
