#include "client/join.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace warren::client {
namespace {

std::runtime_error sys_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

void write_fd(int fd, const std::string& text, const std::string& path) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      throw sys_error("write", path);
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0)
    throw sys_error("fsync", path);
}

}  // namespace

crypto::PrivateKey load_or_create_key(const std::string& path, RandomSource& rng,
                                      std::string* warning) {
  crypto::PrivateKey key;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && (st.st_mode & 077) && warning)
      *warning = "Warning: " + path + " is readable by group or others (chmod 600 it)";
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n < 0)
      throw sys_error("read", path);
    std::string text(buf, static_cast<std::size_t>(n));
    secure_zero(buf, sizeof buf);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
      text.pop_back();
    const bool ok = crypto::secret_from_base64(text, key);
    secure_zero(text.data(), text.size());
    if (!ok)
      throw std::runtime_error(path + ": not a base64 WireGuard private key");
    return key;
  }
  if (errno != ENOENT)
    throw sys_error("open", path);
  key = crypto::generate_private_key(rng);
  fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw sys_error("create", path);
  std::string text = crypto::secret_to_base64(key) + "\n";
  try {
    write_fd(fd, text, path);
  } catch (...) {
    secure_zero(text.data(), text.size());
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  secure_zero(text.data(), text.size());
  ::close(fd);
  return key;
}

ClientConfig config_from_enrollment(const control::Enrollment& e, const crypto::PrivateKey& key,
                                    const std::string& interface,
                                    const std::string& control_endpoint) {
  ClientConfig c;
  c.interface = interface;
  c.private_key = key;
  c.addresses = e.addresses;
  c.dns_servers = e.dns;
  c.mtu = e.mtu;
  c.server_name = control_endpoint;
  PeerConfig p;
  p.public_key = e.server_public_key;
  p.allowed_ips = e.routes;
  if (p.allowed_ips.empty())
    p.allowed_ips = e.addresses;  // at least the tunnel itself
  auto hp = parse_host_port(e.server_endpoint);
  if (!hp)
    throw std::runtime_error("the server sent a bad endpoint '" + e.server_endpoint + "'");
  p.endpoint = *hp;
  p.persistent_keepalive = e.persistent_keepalive;
  c.peers.push_back(std::move(p));
  return c;
}

void write_private_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw sys_error("create", tmp);
  try {
    write_fd(fd, text, tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = sys_error("rename to", path);
    ::unlink(tmp.c_str());
    throw e;
  }
}

ClientConfig join(const std::string& invite_text, const JoinOptions& o, RandomSource& rng,
                  std::string* warning) {
  if (!valid_interface_name(o.interface))
    throw std::runtime_error("'" + o.interface +
                             "' is not a valid interface name (1-15 of a-z A-Z 0-9 _ = + . -)");
  auto invite = control::parse_invite(invite_text);
  if (!invite.ok())
    throw std::runtime_error("bad invite: " + invite.error);
  if (::mkdir(o.config_dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw sys_error("create directory", o.config_dir);
  const std::string base = o.config_dir + "/" + o.interface;
  const crypto::PrivateKey key = load_or_create_key(base + ".key", rng, warning);
  control::Enrollment e =
      control::enroll(*invite.value, o.client_name, crypto::derive_public_key(key), o.timeout);
  ClientConfig c = config_from_enrollment(e, key, o.interface, invite.value->control_endpoint);
  const std::string path = base + ".conf";
  std::string text = "# written by `warren join` for " + e.name +
                     "; a wg-quick file (wg-quick up " + path + " works too)\n" + format_config(c);
  write_private_file(path, text);
  secure_zero(text.data(), text.size());
  ClientConfig loaded = parse_config(format_config(c), path);  // what `warren up` will read
  return loaded;
}

}  // namespace warren::client
