#include "server/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crypto/random.h"

namespace warren::server {

crypto::PrivateKey load_or_create_private_key(const std::string& path, std::string* warning) {
  crypto::PrivateKey key;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw std::runtime_error(path + ": " + std::strerror(errno));
    key = crypto::generate_private_key(crypto::SystemRandom::instance());
    std::string text = crypto::secret_to_base64(key) + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      throw std::runtime_error(path +
                               ": cannot create the private key file: " + std::strerror(errno));
    bool ok = ::fchmod(fd, 0600) == 0 &&
              ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    int e = errno;
    ::close(fd);
    secure_zero(text.data(), text.size());
    if (!ok) {
      ::unlink(path.c_str());
      throw std::runtime_error(path + ": cannot write the private key file: " + std::strerror(e));
    }
    return key;
  }
  if ((st.st_mode & 077) != 0 && warning)
    *warning = path + " is readable by group or others (mode " +
               [&] {
                 char b[8];
                 std::snprintf(b, sizeof b, "%04o", st.st_mode & 07777);
                 return std::string(b);
               }() +
               "); run: chmod 600 " + path;
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text))
    throw std::runtime_error(path + ": cannot read the private key file");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  const bool ok = crypto::secret_from_base64(text, key);
  secure_zero(text.data(), text.size());
  if (!ok)
    throw std::runtime_error(path + ": not a base64 WireGuard private key (as `wg genkey` makes)");
  crypto::clamp(key);
  return key;
}

ServerState open_state(const ServerConfig& config) {
  ServerState s;
  std::string warning;
  s.private_key = load_or_create_private_key(config.private_key_file, &warning);
  if (!warning.empty())
    s.warnings.push_back(warning);
  s.public_key = crypto::derive_public_key(s.private_key);
  s.tls = control::TlsIdentity::load_or_create(config.tls_cert_file(), config.tls_key_file());
  s.store = open_sqlite_store(config.database);
  s.registry = std::make_unique<Registry>(config, *s.store, s.public_key);
  return s;
}

}  // namespace warren::server
