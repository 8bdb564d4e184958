#include "pooler/http/http_server.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "pooler/admin/gather.h"
#include "pooler/admin/show_advice.h"
#include "pooler/http/http_request.h"
#include "pooler/http/metrics.h"
#include "pooler/net/tcp_stream.h"
#include "pooler/net/timer.h"

namespace pooler::http {

// One HTTP client: reads the request head, answers once, closes after the answer left.
class HttpConnection final : public net::Deletable, private net::StreamEvents {
 public:
  HttpConnection(HttpServer& server, std::uint64_t id)
      : server_(server),
        id_(id),
        stream_(server.host().loop(), *this),
        timer_(server.host().loop(), [this] { on_timer(); }) {}
  ~HttpConnection() override { stream_.close(); }

  [[nodiscard]] Result<void> accept(uv_stream_s* listener) { return stream_.accept_from(listener); }
  void close();

 private:
  // Reports whether the primary of the first database accepts a TCP connection.
  class Probe final : private net::StreamEvents {
   public:
    Probe(HttpConnection& owner, net::Loop& loop) : owner_(owner), stream_(loop, *this) {}
    ~Probe() { stream_.close(); }
    void stop() { stream_.close(); }
    Result<void> start(const config::HostPort& address) {
      return stream_.connect(address.host, address.port);
    }

   private:
    void on_connected() override { owner_.on_probe(true); }
    void on_read(std::span<const std::byte>) override {}
    void on_eof() override { owner_.on_probe(false); }
    void on_error(const Error&) override { owner_.on_probe(false); }
    HttpConnection& owner_;
    net::TcpStream stream_;
  };

  void on_read(std::span<const std::byte> bytes) override;
  void on_eof() override { close(); }
  void on_error(const Error&) override { close(); }
  void handle(const Request& request);
  void readyz();
  void on_probe(bool ok);
  void respond(int status, std::string_view content_type, const std::string& body);
  void close_when_sent();
  void on_timer();

  HttpServer& server_;
  std::uint64_t id_;
  net::TcpStream stream_;
  std::string head_;
  bool answered_ = false;
  bool closed_ = false;
  std::unique_ptr<Probe> probe_;
  net::Timer timer_;  // the probe's deadline, then polling for the answer to leave
  int drain_checks_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

namespace {

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

constexpr std::string_view kText = "text/plain; charset=utf-8";

}  // namespace

void HttpConnection::on_read(std::span<const std::byte> bytes) {
  if (answered_) {
    return;  // one request per connection; anything after it is ignored
  }
  head_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  Request request;
  switch (parse_request(head_, request)) {
    case ParseStatus::Incomplete:
      return;
    case ParseStatus::Bad:
      respond(400, kText, "bad request\n");
      return;
    case ParseStatus::TooLarge:
      respond(431, kText, "request too large\n");
      return;
    case ParseStatus::Complete:
      handle(request);
      return;
  }
}

void HttpConnection::handle(const Request& request) {
  answered_ = true;
  stream_.pause_reading();
  if (request.method != "GET") {
    respond(405, kText, "only GET is supported\n");
    return;
  }
  if (request.path == "/healthz") {
    respond(200, kText, "ok\n");
    return;
  }
  if (request.path == "/readyz") {
    readyz();
    return;
  }
  if (request.path == "/index_advice") {
    admin::gather_each<std::vector<advice::ShapeRow>>(
        server_.control(), server_.host().loop(), alive_,
        [](admin::WorkerControl& w) { return w.shapes(); },
        [this](std::vector<std::vector<advice::ShapeRow>> rows) {
          auto records = server_.control().advice_store().records();
          admin::overlay_live_counts(records, admin::merge_shapes(rows));
          respond(200, "application/json", render_advice_json(records));
        });
    return;
  }
  if (request.path != "/metrics" && request.path != "/pools") {
    respond(404, kText, "not found\n");
    return;
  }
  const bool metrics = request.path == "/metrics";
  admin::gather(server_.control(), server_.host().loop(), alive_,
                [this, metrics](admin::Snapshots snaps) {
                  if (metrics) {
                    const auto& control = server_.control();
                    respond(200, "text/plain; version=0.0.4; charset=utf-8",
                            render_metrics(snaps) +
                                render_advice_metrics(control.advice_store(), control.samples_dropped()));
                  } else {
                    respond(200, "application/json", render_pools_json(snaps));
                  }
                });
}

// Ready when some pool holds a logged-in backend, or else when a primary accepts a TCP
// connection within a second. Never while stopping: a draining pgmux takes no new clients.
void HttpConnection::readyz() {
  if (server_.control().stopping()) {
    respond(503, kText, "shutting down\n");
    return;
  }
  admin::gather(server_.control(), server_.host().loop(), alive_, [this](admin::Snapshots snaps) {
    if (any_live_backend(snaps)) {
      respond(200, kText, "ready\n");
      return;
    }
    const auto& databases = server_.host().config().databases;
    if (databases.empty()) {
      respond(503, kText, "no database configured\n");
      return;
    }
    probe_ = std::make_unique<Probe>(*this, server_.host().loop());
    if (!probe_->start(databases.begin()->second.primary)) {
      respond(503, kText, "primary unreachable\n");
      return;
    }
    timer_.start(std::chrono::milliseconds(1000));
  });
}

void HttpConnection::on_probe(bool ok) {
  if (!probe_) {
    return;
  }
  // Closed now (no more events), deleted on a later turn: never inside its own callback.
  probe_->stop();
  server_.host().loop().post([p = std::shared_ptr<Probe>(std::move(probe_))] {});
  timer_.stop();
  if (ok) {
    respond(200, kText, "ready\n");
  } else {
    respond(503, kText, "primary unreachable\n");
  }
}

void HttpConnection::respond(int status, std::string_view content_type, const std::string& body) {
  if (closed_) {
    return;
  }
  answered_ = true;
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      status, reason(status), content_type, body.size());
  out += body;
  stream_.write(std::as_bytes(std::span(out.data(), out.size())));
  close_when_sent();
}

// A close drops what the kernel has not taken yet: wait until the queue is empty (5 s at most).
void HttpConnection::close_when_sent() {
  if (stream_.queued_bytes() == 0 || ++drain_checks_ > 500) {
    close();
    return;
  }
  timer_.start(std::chrono::milliseconds(10));
}

void HttpConnection::on_timer() {
  if (probe_) {
    on_probe(false);  // no answer within the deadline
  } else {
    close_when_sent();
  }
}

void HttpConnection::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  stream_.close();
  server_.on_connection_closed(id_);
}

HttpServer::HttpServer(client::SessionHost& host, admin::Control& control)
    : host_(host),
      control_(control),
      listener_(host.loop(), [this](uv_stream_s* server) { on_connection(server); }) {}

HttpServer::~HttpServer() { close(); }

Result<void> HttpServer::listen(const config::HostPort& address) {
  return listener_.listen(address.host, address.port, 128);
}

void HttpServer::close() {
  listener_.close();
  for (auto& [id, conn] : connections_) {
    host_.loop().defer_delete(std::move(conn));
  }
  connections_.clear();
}

void HttpServer::on_connection(uv_stream_s* server) {
  const std::uint64_t id = next_id_++;
  auto conn = std::make_unique<HttpConnection>(*this, id);
  if (auto ok = conn->accept(server); !ok) {
    spdlog::warn("http: accept failed: {}", ok.error().message);
    host_.loop().defer_delete(std::move(conn));
    return;
  }
  connections_.emplace(id, std::move(conn));
}

void HttpServer::on_connection_closed(std::uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    return;
  }
  host_.loop().defer_delete(std::move(it->second));
  connections_.erase(it);
}

}  // namespace pooler::http
