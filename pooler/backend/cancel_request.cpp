#include "pooler/backend/cancel_request.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <utility>

#include "pooler/net/tcp_stream.h"
#include "pooler/wire/messages.h"

namespace pooler::backend {
namespace {

class CancelSender final : public net::Deletable, private net::StreamEvents {
 public:
  CancelSender(net::Loop& loop, std::int32_t pid, std::int32_t secret, std::function<void()> on_done)
      : loop_(loop), stream_(loop, *this), pid_(pid), secret_(secret), on_done_(std::move(on_done)) {}

  void start(const config::HostPort& address, std::unique_ptr<CancelSender> self) {
    self_ = std::move(self);
    if (auto ok = stream_.connect(address.host, address.port); !ok) {
      spdlog::warn("cancel request to {} failed: {}", address.to_string(), ok.error().message);
      finish();
    }
  }

 private:
  void on_connected() override {
    wire::WriteBuffer out;
    wire::encode_cancel_request(pid_, secret_, out);
    stream_.write(out.data());
  }
  void on_read(std::span<const std::byte>) override {}
  void on_eof() override { finish(); }
  void on_error(const Error& error) override {
    spdlog::warn("cancel request failed: {}", error.message);
    finish();
  }
  void finish() {
    stream_.close();
    if (on_done_) {
      std::exchange(on_done_, {})();
    }
    if (self_) {
      loop_.defer_delete(std::move(self_));
    }
  }

  net::Loop& loop_;
  net::TcpStream stream_;
  std::int32_t pid_;
  std::int32_t secret_;
  std::function<void()> on_done_;
  std::unique_ptr<CancelSender> self_;
};

}  // namespace

void send_cancel_request(net::Loop& loop, const config::HostPort& address, std::int32_t pid,
                         std::int32_t secret, std::function<void()> on_done) {
  auto sender = std::make_unique<CancelSender>(loop, pid, secret, std::move(on_done));
  CancelSender* raw = sender.get();
  raw->start(address, std::move(sender));
}

}  // namespace pooler::backend
