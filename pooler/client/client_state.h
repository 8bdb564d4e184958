#pragma once
// The life of one client connection (application -> pgmux).

#include <cstdint>
#include <string_view>

namespace pooler::client {

enum class ClientState : std::uint8_t {
  AwaitingStartup,    // accepted; expecting StartupMessage, SSLRequest or CancelRequest
  Authenticating,     // auth exchange with the client in progress
  WaitingForParams,   // authenticated; waiting for the pool to learn the server's parameters
  Idle,               // logged in; no backend leased; nothing in flight
  WaitingForBackend,  // request buffered; queued in its pool
  Throttled,          // request buffered; waiting for its user's query rate (max_user_query_rate)
  Linked,             // backend leased; frames flow both ways
  Closing,            // close requested; further input is dropped
};

inline std::string_view to_string(ClientState s) {
  switch (s) {
    case ClientState::AwaitingStartup: return "awaiting_startup";
    case ClientState::Authenticating: return "authenticating";
    case ClientState::WaitingForParams: return "waiting_for_params";
    case ClientState::Idle: return "idle";
    case ClientState::WaitingForBackend: return "waiting";
    case ClientState::Throttled: return "throttled";
    case ClientState::Linked: return "active";
    case ClientState::Closing: return "closing";
  }
  return "?";
}

inline bool is_allowed(ClientState from, ClientState to) {
  using S = ClientState;
  if (to == S::Closing) {
    return from != S::Closing;
  }
  switch (from) {
    case S::AwaitingStartup: return to == S::Authenticating || to == S::AwaitingStartup;
    case S::Authenticating: return to == S::WaitingForParams;
    case S::WaitingForParams: return to == S::Idle;
    case S::Idle: return to == S::WaitingForBackend || to == S::Linked || to == S::Throttled;
    case S::Throttled: return to == S::Idle;
    case S::WaitingForBackend: return to == S::Linked || to == S::Idle;
    case S::Linked: return to == S::Idle;
    case S::Closing: return false;
  }
  return false;
}

}  // namespace pooler::client
