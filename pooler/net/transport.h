#pragma once
// The two small interfaces between sessions and sockets: events a connection reports,
// and what a session may do with its connection. TcpStream implements Transport; unit
// tests use a fake that records bytes.

#include <cstddef>
#include <span>
#include <vector>

#include "pooler/base/result.h"

namespace pooler::net {

// Events a connection reports. Always called on the loop thread.
class StreamEvents {
 public:
  virtual void on_connected() {}                             // outgoing connect finished
  virtual void on_read(std::span<const std::byte> bytes) = 0;  // valid during the call only
  virtual void on_eof() = 0;
  virtual void on_error(const Error& error) = 0;  // the stream is unusable; close() follows
  virtual void on_write_drained() {}              // queued bytes fell below the low-water mark
  virtual void on_tls_ready() {}                  // the TLS handshake started by start_tls finished

 protected:
  ~StreamEvents() = default;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `bytes`; what the kernel does not take at once is copied and queued.
  virtual void write(std::span<const std::byte> bytes) = 0;
  // Bytes accepted but not yet handed to the kernel.
  virtual std::size_t queued_bytes() const = 0;
  virtual void pause_reading() = 0;  // backpressure
  virtual void resume_reading() = 0;
  virtual void close() = 0;  // idempotent; no events after it
};

}  // namespace pooler::net
