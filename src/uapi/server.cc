// UAPI server: an accept thread plus one thread per connection.
//
// Threads rather than one poll loop because each connection's work is a short, blocking
// exchange (read a request, call the Handler, write the reply), and every blocking step
// already has a timeout or an interrupt in platform/control_socket.h. The accept thread joins
// finished connection threads as it goes; stop() wakes and joins everything.
//
// Error replies follow wireguard-go's IpcHandle: the errno of the failure, negated, and a line
// in the error log ("IPC error -22: ...").

#include "uapi/server.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "base/secure.h"
#include "platform/log.h"

namespace warren::uapi {
namespace {

constexpr std::size_t kReadChunk = std::size_t{64} << 10;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

bool valid_interface_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string::npos;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) {
    return name + ".sock";
  }
  if (dir.back() == '/') {
    return dir + name + ".sock";
  }
  return dir + "/" + name + ".sock";
}

void log_ipc_error(int errno_value, const std::string& message) {
  platform::log_error("IPC error %d: %s", -errno_value, message.c_str());
}

}  // namespace

UapiServer::UapiServer(std::string interface_name, Handler& handler, const std::string& socket_dir,
                       ServerOptions options)
    : interface_name_(std::move(interface_name)),
      socket_path_(join_path(socket_dir, interface_name_)),
      handler_(handler),
      options_(options) {}

UapiServer::~UapiServer() {
  stop();
}

Status UapiServer::bind() {
  if (listener_) {
    return {};
  }
  if (!valid_interface_name(interface_name_)) {
    return Error(EINVAL, "invalid interface name for a UAPI socket");
  }
  auto r = platform::listen_unix(socket_path_);
  if (!r.ok()) {
    if (r.code() == EADDRINUSE) {
      return Error(EADDRINUSE, "interface " + interface_name_ +
                                   " is already in use by another process (" + socket_path_ +
                                   ")");
    }
    return Error(r.code(), "cannot create UAPI socket " + socket_path_ + ": " + r.message());
  }
  listener_ = std::move(*r);
  return {};
}

Status UapiServer::start() {
  if (accept_thread_.joinable()) {
    return {};
  }
  if (Status s = bind(); !s) {
    return s;
  }
  accept_thread_ = std::thread([this] { accept_loop(); });
  return {};
}

void UapiServer::stop() {
  if (!listener_) {
    return;
  }
  listener_->interrupt();
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }

  // The accept thread is gone, so no connection can be added. Shutting a connection down
  // wakes its thread out of read/write; the thread then closes it under the same mutex.
  std::list<Connection> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& c : connections_) {
      if (!c.done) {
        c.conn.shutdown();
      }
    }
    all.splice(all.end(), connections_);  // list nodes keep their addresses
  }
  for (auto& c : all) {
    if (c.thread.joinable()) {
      c.thread.join();
    }
  }
  listener_->close();
  listener_.reset();
}

bool UapiServer::socket_file_present() const {
  return listener_ && listener_->path_is_ours();
}

std::size_t UapiServer::connection_count() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& c : connections_) {
    n += c.done ? 0 : 1;
  }
  return n;
}

void UapiServer::accept_loop() {
  for (;;) {
    auto r = listener_->accept();
    reap_finished();
    if (!r.ok()) {
      if (r.code() == ECANCELED) {
        return;
      }
      // Out of descriptors or memory: wait for connections to finish rather than spin.
      platform::log_error("UAPI: %s", r.message().c_str());
      std::this_thread::sleep_for(kAcceptRetryDelay);
      continue;
    }
    std::lock_guard lock(mutex_);
    std::size_t active = 0;
    for (const auto& c : connections_) {
      active += c.done ? 0 : 1;
    }
    if (active >= options_.max_connections) {
      platform::log_error("UAPI: too many connections (%zu), dropping a new one", active);
      r->close();
      continue;
    }
    Connection& c = connections_.emplace_back();
    c.conn = std::move(*r);
    try {
      c.thread = std::thread([this, &c] { serve(c); });
    } catch (const std::system_error& e) {
      platform::log_error("UAPI: cannot start a connection thread: %s", e.what());
      connections_.pop_back();  // closes the connection
    }
  }
}

void UapiServer::reap_finished() {
  std::list<Connection> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->done) {
        finished.splice(finished.end(), connections_, it);
      }
      it = next;
    }
  }
  // `done` is the thread's last action under the mutex, so these joins return at once.
  for (auto& c : finished) {
    c.thread.join();
  }
}

void UapiServer::serve(Connection& c) {
  RequestReader reader(options_.max_request_bytes);
  std::vector<char> buf(kReadChunk);
  bool open = true;
  while (open) {
    auto r = c.conn.read(buf, options_.read_timeout);
    if (!r.ok()) {
      if (r.code() == ETIMEDOUT) {
        platform::log_verbose("UAPI: closing a connection idle for %lld ms",
                              static_cast<long long>(options_.read_timeout.count()));
      }
      break;
    }
    if (*r == 0) {
      if (reader.pending_bytes() != 0) {
        platform::log_verbose("UAPI: client hung up in the middle of a request; nothing applied");
      }
      break;
    }
    reader.feed(std::string_view(buf.data(), *r));
    secure_zero(buf.data(), *r);
    while (open) {
      std::optional<Request> request = reader.next();
      if (!request) {
        break;
      }
      open = handle(*request, c.conn);
    }
  }
  std::lock_guard lock(mutex_);
  c.conn.close();
  c.done = true;
}

bool UapiServer::handle(const Request& request, platform::ControlConnection& conn) {
  std::string reply;
  switch (request.kind) {
    case RequestKind::kGet:
      reply = run_get();
      break;
    case RequestKind::kSet:
      reply = run_set(request.body);
      break;
    case RequestKind::kReject:
      log_ipc_error(request.errno_value,
                    request.close_after ? "request too large" : "trailing character in UAPI get");
      reply = format_errno(request.errno_value);
      break;
    case RequestKind::kClose:
      // wireguard-go logs the operation line; it may be anything, so we do not.
      platform::log_error("UAPI: invalid operation, closing the connection");
      return false;
  }
  Status s = conn.write_all(reply, options_.write_timeout);
  secure_zero(reply.data(), reply.size());  // a get reply holds the private key
  if (!s.ok()) {
    return false;
  }
  return !request.close_after;
}

std::string UapiServer::run_get() {
  try {
    wg::DeviceSnapshot snapshot;
    {
      std::lock_guard lock(handler_mutex_);
      snapshot = handler_.get();
    }
    return format_get(snapshot);
  } catch (const std::exception& e) {
    log_ipc_error(EIO, std::string("get failed: ") + e.what());
  } catch (...) {
    log_ipc_error(EIO, "get failed");
  }
  return format_errno(EIO);
}

std::string UapiServer::run_set(const std::string& body) {
  auto parsed = parse_set(body);
  if (!parsed) {
    log_ipc_error(parsed.error().code, parsed.error().message);
    return format_errno(parsed.error().code);
  }
  const wg::ConfigDelta& delta = *parsed;
  Status result;
  try {
    std::lock_guard lock(handler_mutex_);
    result = handler_.set(delta);
  } catch (const std::exception& e) {
    result = Error(EIO, std::string("set failed: ") + e.what());
  } catch (...) {
    result = Error(EIO, "set failed");
  }
  if (!result)
    log_ipc_error(result.code(), result.message());
  return format_errno(result.code());
}

}  // namespace warren::uapi
