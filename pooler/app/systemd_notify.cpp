#include "pooler/app/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace pooler::app {

Result<void> notify_systemd(std::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || env[0] == '\0') {
    return {};
  }
  const std::string_view path(env);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A path, or '@' for a name in the abstract namespace (the '@' becomes a NUL byte and
  // the address length, not a terminator, ends the name). vsock: addresses are not
  // supported: pgmux does not run in VMs started that way.
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::Io, "NOTIFY_SOCKET: unsupported address '" + std::string(path) + "'");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') {
    addr.sun_path[0] = '\0';
  }
  // A path's length counts its terminating NUL; an abstract name's does not.
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                               (path[0] == '/' ? 1 : 0));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail(Errc::Io, std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno));
  }
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&addr), addr_len);
  const int saved = errno;
  ::close(fd);
  if (sent < 0) {
    return fail(Errc::Io, "NOTIFY_SOCKET " + std::string(path) + ": " + std::strerror(saved));
  }
  return {};
}

std::string reloading_state() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
                    static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace pooler::app
