#pragma once
// The life of one backend connection (pgmux -> PostgreSQL).

#include <cstdint>
#include <string_view>

namespace pooler::backend {

enum class BackendState : std::uint8_t {
  Connecting,      // TCP connect in progress
  Authenticating,  // StartupMessage sent; auth exchange and ParameterStatus until ReadyForQuery
  Idle,            // in its pool, nothing owed, ready to lease
  Active,          // leased to a client; frames flow both ways
  Draining,        // its client left mid-query: finishing, rolling back, then back to the pool
  Closed,          // closed; waiting for deferred deletion
};

inline std::string_view to_string(BackendState s) {
  switch (s) {
    case BackendState::Connecting: return "connecting";
    case BackendState::Authenticating: return "authenticating";
    case BackendState::Idle: return "idle";
    case BackendState::Active: return "active";
    case BackendState::Draining: return "draining";
    case BackendState::Closed: return "closed";
  }
  return "?";
}

inline bool is_allowed(BackendState from, BackendState to) {
  using S = BackendState;
  if (to == S::Closed) {
    return from != S::Closed;
  }
  switch (from) {
    case S::Connecting: return to == S::Authenticating;
    case S::Authenticating: return to == S::Idle;
    case S::Idle: return to == S::Active;
    case S::Active: return to == S::Idle || to == S::Draining;
    case S::Draining: return to == S::Idle;
    case S::Closed: return false;
  }
  return false;
}

}  // namespace pooler::backend
