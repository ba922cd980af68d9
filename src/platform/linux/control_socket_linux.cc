// AF_UNIX stream sockets for the control channels (UAPI, status).
//
// Listener: a non-blocking listening socket plus an eventfd; accept() polls both, so another
// thread can interrupt it by making the eventfd readable. Connections are non-blocking and
// every wait is a poll() with a timeout, so no client can hold a thread forever.
//
// Socket creation follows wireguard-go (ipc/uapi_linux.go, ipc/uapi_unix.go): mkdir -p the
// directory, probe an existing socket with connect() (accepted = in use, refused = stale and
// removed), bind under umask 077.

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "platform/control_socket.h"

namespace warren::platform {
namespace {

bool make_address(const std::string& path, sockaddr_un& addr, socklen_t& len) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  // Abstract names (leading NUL) are not supported: the socket must be a file wg can find.
  if (path.empty() || path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos) {
    return false;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

int poll_timeout_ms(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    return -1;
  }
  if (timeout.count() > INT32_MAX) {
    return INT32_MAX;
  }
  return static_cast<int>(timeout.count());
}

// Waits for `events` on `fd`. 0 = ready, ETIMEDOUT, or the poll errno.
int wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, poll_timeout_ms(timeout));
    if (r > 0) {
      return 0;  // readable, writable, or an error/hang-up the next call reports
    }
    if (r == 0) {
      return ETIMEDOUT;
    }
    if (errno != EINTR) {
      return errno;
    }
    // EINTR: wait the full timeout again; signals are rare here (the daemon blocks them).
  }
}

// mkdir -p, one component at a time. Directories created get exactly `mode`; existing ones
// are left as they are.
Status make_directories(const std::string& dir, unsigned mode) {
  if (dir.empty()) {
    return ok();
  }
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (part.empty()) {
      continue;
    }
    if (::mkdir(part.c_str(), static_cast<mode_t>(mode)) == 0) {
      // The umask applies to mkdir; the directory must be exactly `mode` (wg needs to search it).
      ::chmod(part.c_str(), static_cast<mode_t>(mode));
      continue;
    }
    if (errno != EEXIST) {
      return Error::from_errno(errno, "mkdir(socket directory)");
    }
    struct stat st {};
    if (::stat(part.c_str(), &st) != 0) {
      return Error::from_errno(errno, "stat(socket directory)");
    }
    if (!S_ISDIR(st.st_mode)) {
      return Error::from_errno(ENOTDIR, "mkdir(socket directory)");
    }
  }
  return ok();
}

std::string parent_directory(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return {};
  }
  if (slash == 0) {
    return "/";
  }
  return path.substr(0, slash);
}

// A name in the same directory as `path`, private to this process, for staging the socket
// before it is moved into place (rename() needs the same file system; the directory is ours).
std::string private_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  // Not ending in ".sock": `wg show` lists every *.sock in /var/run/wireguard as an interface.
  std::string dir = path.find('/') == std::string::npos ? "." : parent_directory(path);
  return dir + "/.warren-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + ".staging";
}

// Connects without blocking; 0 on success (or EAGAIN: the listener is alive but its backlog
// is full), else the errno.
int probe_connect(const std::string& path, UniqueFd& out) {
  sockaddr_un addr{};
  socklen_t len = 0;
  if (!make_address(path, addr, len)) {
    return ENAMETOOLONG;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    return errno;
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    return errno;
  }
  out = std::move(fd);
  return 0;
}

// Deals with whatever already sits at `path`: nothing or a stale socket ⇒ ok (the stale one
// is removed); a live socket ⇒ EADDRINUSE; anything else ⇒ EEXIST.
Status clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return ok();
    }
    return Error::from_errno(errno, "lstat(socket path)");
  }
  // wireguard-go would unlink any file there; removing a regular file somebody put in the
  // socket directory is not ours to do.
  if (!S_ISSOCK(st.st_mode)) {
    return Error::from_errno(EEXIST, "existing file is not a socket");
  }
  UniqueFd probe;
  int err = probe_connect(path, probe);
  if (err == 0 || err == EAGAIN) {
    return Error::from_errno(EADDRINUSE, "connect(existing socket)");
  }
  if (err == ENOENT) {
    return ok();  // it went away meanwhile
  }
  if (err != ECONNREFUSED) {
    return Error::from_errno(err, "connect(existing socket)");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error::from_errno(errno, "unlink(stale socket)");
  }
  return ok();
}

}  // namespace

// ---- ControlConnection -----------------------------------------------------------------------

ControlConnection::ControlConnection(UniqueFd fd) : fd_(std::move(fd)) {
  if (fd_) {
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) {
      ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
    }
  }
}

ControlConnection::ControlConnection(ControlConnection&& o) noexcept : fd_(std::move(o.fd_)) {}

ControlConnection& ControlConnection::operator=(ControlConnection&& o) noexcept {
  if (this != &o) {
    fd_ = std::move(o.fd_);
  }
  return *this;
}

std::optional<std::uint32_t> ControlConnection::peer_uid() const {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (!fd_.valid() || ::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return std::nullopt;
  return static_cast<std::uint32_t>(cred.uid);
}

bool ControlConnection::peer_in_group(std::uint32_t gid) const {
  if (!fd_.valid())
    return false;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return false;
  if (static_cast<std::uint32_t>(cred.gid) == gid)
    return true;
  // SO_PEERGROUPS (Linux 4.13): ERANGE tells the size needed.
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      return std::find(groups.begin(), groups.end(), static_cast<gid_t>(gid)) != groups.end();
    }
    if (errno != ERANGE)
      return false;
    groups.resize(glen / sizeof(gid_t) + 1);
  }
  return false;
}

Result<std::size_t> ControlConnection::read(std::span<char> out,
                                            std::chrono::milliseconds timeout) {
  if (!fd_) {
    return Error::from_errno(EBADF, "read(control socket)");
  }
  if (out.empty()) {
    return 0;
  }
  for (;;) {
    ssize_t n = ::recv(fd_.get(), out.data(), out.size(), 0);
    if (n >= 0) {
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Error::from_errno(errno, "recv(control socket)");
    }
    if (int err = wait_for(fd_.get(), POLLIN, timeout); err != 0) {
      return Error::from_errno(err, "poll(control socket)");
    }
  }
}

Status ControlConnection::write_all(std::span<const char> data, std::chrono::milliseconds timeout) {
  if (!fd_) {
    return Error::from_errno(EBADF, "send(control socket)");
  }
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data = data.subspan(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Error::from_errno(errno, "send(control socket)");
    }
    if (int err = wait_for(fd_.get(), POLLOUT, timeout); err != 0) {
      return Error::from_errno(err, "poll(control socket)");
    }
  }
  return ok();
}

void ControlConnection::shutdown() noexcept {
  std::lock_guard lock(close_mutex_);
  if (fd_) {
    ::shutdown(fd_.get(), SHUT_RDWR);
  }
}

void ControlConnection::close() noexcept {
  std::lock_guard lock(close_mutex_);
  fd_.reset();
}

// ---- ControlListener -------------------------------------------------------------------------

ControlListener::ControlListener(UniqueFd listen_fd, UniqueFd wake_fd, std::string path,
                                 std::uint64_t device, std::uint64_t inode)
    : listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)),
      path_(std::move(path)),
      device_(device),
      inode_(inode),
      spare_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

ControlListener::~ControlListener() {
  close();
}

Result<ControlConnection> ControlListener::accept() {
  if (!listen_fd_) {
    return Error::from_errno(ECANCELED, "accept(control socket)");
  }
  for (;;) {
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error::from_errno(errno, "poll(control socket)");
    }
    // The wake-up is never drained, so once interrupted every later call ends here too.
    if (fds[0].revents != 0) {
      return Error::from_errno(ECANCELED, "accept(control socket)");
    }
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      return ControlConnection(UniqueFd(fd));
    }
    // The client may have given up between poll and accept; that is not the server's problem.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
        errno == EPROTO) {
      continue;
    }
    const int err = errno;
    if ((err == EMFILE || err == ENFILE) && spare_fd_) {
      // Refuse rather than leave the client waiting in the backlog for a reply that cannot
      // come: free the reserve, accept and close at once, take the reserve back.
      spare_fd_.reset();
      int refused = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (refused >= 0)
        ::close(refused);
      spare_fd_ = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      return Error::from_errno(err,
                               "accept4(control socket): out of descriptors, refused a client");
    }
    if (!spare_fd_)
      spare_fd_ = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    return Error::from_errno(err, "accept4(control socket)");
  }
}

void ControlListener::interrupt() noexcept {
  if (!wake_fd_) {
    return;
  }
  std::uint64_t one = 1;
  // Cannot fail short of a full counter, which would also mean "readable".
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

bool ControlListener::path_is_ours() const {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    return false;
  }
  return S_ISSOCK(st.st_mode) && static_cast<std::uint64_t>(st.st_dev) == device_ &&
         static_cast<std::uint64_t>(st.st_ino) == inode_;
}

void ControlListener::close() noexcept {
  if (!listen_fd_) {
    return;
  }
  // Only our own socket is removed: a second daemon that replaced a path we thought stale
  // must keep its socket.
  if (path_is_ours()) {
    ::unlink(path_.c_str());
  }
  listen_fd_.reset();
}

// ---- factories -------------------------------------------------------------------------------

Result<std::unique_ptr<ControlListener>> listen_unix(const std::string& path,
                                                     const ListenOptions& options) {
  sockaddr_un addr{};
  socklen_t len = 0;
  if (!make_address(path, addr, len)) {
    return Error::from_errno(ENAMETOOLONG, "socket path");
  }

  if (Status s = make_directories(parent_directory(path), options.directory_mode); !s.ok()) {
    return s.error();
  }
  if (Status s = clear_stale_socket(path); !s.ok()) {
    return s.error();
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    return Error::from_errno(errno, "socket(AF_UNIX)");
  }
  // The socket is bound under a private name in the same directory, made listening, and only
  // then moved to `path` (rename keeps the inode). A client that sees the file can connect at
  // once: binding at `path` directly leaves an instant in which the file exists but connect()
  // is refused, and `wg`, wg-quick and our tests all take the file's existence as "ready".
  // RENAME_NOREPLACE keeps the old guarantee of bind(): if another process took `path` since
  // clear_stale_socket(), we fail with EADDRINUSE instead of replacing its socket.
  std::string bound_path = private_name(path);
  sockaddr_un bound_addr{};
  socklen_t bound_len = 0;
  const bool staged = make_address(bound_path, bound_addr, bound_len);
  if (!staged) {
    // Too long for sun_path: bind at `path` itself (the short window above remains).
    bound_path = path;
    bound_addr = addr;
    bound_len = len;
  } else {
    ::unlink(bound_path.c_str());  // a leftover of a crashed process with our PID
  }
  // Linux creates the socket file with the socket inode's mode minus the umask, so setting the
  // mode here makes the file right from its first instant, independent of the umask. The
  // umask 077 around bind() (wireguard-go's method) is the second guard; it is process-wide,
  // which only makes files other threads create in that instant stricter, never looser.
  ::fchmod(fd.get(), static_cast<mode_t>(options.socket_mode & 0777));
  mode_t old_mask = ::umask(077);
  int bind_result = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bound_addr), bound_len);
  int bind_errno = errno;
  ::umask(old_mask);
  if (bind_result != 0) {
    // EADDRINUSE here means another process bound the path since clear_stale_socket().
    return Error::from_errno(bind_errno, "bind(control socket)");
  }

  if (options.socket_group) {
    // By the descriptor's path right after bind (the directory is root's): group first, then
    // the mode that may open the socket to that group.
    if (::chown(bound_path.c_str(), static_cast<uid_t>(-1),
                static_cast<gid_t>(*options.socket_group)) != 0 ||
        ::chmod(bound_path.c_str(), static_cast<mode_t>(options.socket_mode & 0777)) != 0) {
      int err = errno;
      ::unlink(bound_path.c_str());
      return Error::from_errno(err, "chown/chmod(control socket)");
    }
  }

  struct stat st {};
  if (::stat(bound_path.c_str(), &st) != 0) {
    int err = errno;
    ::unlink(bound_path.c_str());
    return Error::from_errno(err, "stat(control socket)");
  }
  if (::listen(fd.get(), options.backlog) != 0) {
    int err = errno;
    ::unlink(bound_path.c_str());
    return Error::from_errno(err, "listen(control socket)");
  }
  if (staged &&
      ::renameat2(AT_FDCWD, bound_path.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    ::unlink(bound_path.c_str());
    return Error::from_errno(err == EEXIST ? EADDRINUSE : err, "rename(control socket)");
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) {
    int err = errno;
    ::unlink(path.c_str());
    return Error::from_errno(err, "eventfd");
  }
  return std::make_unique<ControlListener>(std::move(fd), std::move(wake), path,
                                           static_cast<std::uint64_t>(st.st_dev),
                                           static_cast<std::uint64_t>(st.st_ino));
}

Result<ControlConnection> connect_unix(const std::string& path) {
  UniqueFd fd;
  if (int err = probe_connect(path, fd); err != 0) {
    return Error::from_errno(err, "connect(control socket)");
  }
  return ControlConnection(std::move(fd));
}

}  // namespace warren::platform
