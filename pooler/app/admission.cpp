#include "pooler/app/admission.h"

#include <algorithm>

namespace pooler::app {

namespace {
constexpr std::uint64_t kFailureWindowMs = 60'000;
}

std::string_view to_string(Refusal r) {
  switch (r) {
    case Refusal::MaxClientConn:
      return "max_client_conn";
    case Refusal::AddressConns:
      return "address_connections";
    case Refusal::AddressRate:
      return "address_rate";
    case Refusal::LoginFailures:
      return "login_failures";
    case Refusal::UserConns:
      return "user_connections";
    case Refusal::QueryRate:
      return "query_rate";
  }
  return "?";
}

std::optional<Refusal> Admission::admit_address(std::string_view address,
                                                const AdmissionLimits& limits,
                                                std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (++admits_ % 4096 == 0) {
    sweep(now_ms);
  }
  auto [it, fresh] = addresses_.try_emplace(std::string(address));
  Address& a = it->second;
  if (fresh) {
    a.tokens = limits.max_rate_per_address;
    a.tokens_at_ms = now_ms;
  }
  std::optional<Refusal> refused;
  if (limits.max_login_failures > 0 && now_ms - a.failures_since_ms < kFailureWindowMs &&
      a.failures >= limits.max_login_failures) {
    refused = Refusal::LoginFailures;
  } else if (limits.max_per_address > 0 && a.connections >= limits.max_per_address) {
    refused = Refusal::AddressConns;
  } else if (limits.max_rate_per_address > 0) {
    const double rate = limits.max_rate_per_address;
    a.tokens = std::min(std::max(rate, 1.0),
                        a.tokens + static_cast<double>(now_ms - a.tokens_at_ms) * rate / 1000.0);
    a.tokens_at_ms = now_ms;
    if (a.tokens < 1.0) {
      refused = Refusal::AddressRate;
    } else {
      a.tokens -= 1.0;
    }
  }
  if (!refused) {
    ++a.connections;
  }
  return refused;
}

void Admission::release_address(std::string_view address) {
  std::lock_guard lock(mutex_);
  auto it = addresses_.find(std::string(address));
  if (it == addresses_.end()) {
    return;
  }
  Address& a = it->second;
  a.connections = std::max(0, a.connections - 1);
  if (a.connections == 0 && a.failures == 0 && a.tokens_at_ms == 0) {
    addresses_.erase(it);  // no limit remembers anything about it
  }
}

void Admission::note_login_failure(std::string_view address, std::uint64_t now_ms) {
  std::lock_guard lock(mutex_);
  Address& a = addresses_[std::string(address)];
  if (now_ms - a.failures_since_ms >= kFailureWindowMs) {
    a.failures = 0;
    a.failures_since_ms = now_ms;
  }
  ++a.failures;
}

// Addresses with no connection whose failures and rate have long expired are forgotten,
// so the map holds only addresses that matter now.
void Admission::sweep(std::uint64_t now_ms) {
  std::erase_if(addresses_, [&](const auto& entry) {
    const Address& a = entry.second;
    return a.connections == 0 && now_ms - a.failures_since_ms >= kFailureWindowMs &&
           now_ms - a.tokens_at_ms >= kFailureWindowMs;
  });
}

bool Admission::admit_user(std::string_view user, int limit) {
  std::lock_guard lock(mutex_);
  int& n = users_[std::string(user)];
  if (limit > 0 && n >= limit) {
    return false;
  }
  ++n;
  return true;
}

void Admission::release_user(std::string_view user) {
  std::lock_guard lock(mutex_);
  auto it = users_.find(std::string(user));
  if (it != users_.end() && --it->second <= 0) {
    users_.erase(it);
  }
}

}  // namespace pooler::app
