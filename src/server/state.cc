#include "server/state.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <string_view>

#include "crypto/random.h"
#include "platform/files.h"

namespace warren::server {

std::optional<std::string> private_file_warning(const std::string& path, std::string_view what) {
  auto info = platform::file_info(path);
  if (!info)
    return std::nullopt;
  std::string problems;
  if ((info->mode & 066) != 0) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", info->mode);
    problems = std::string((info->mode & 044) ? "readable" : "writable") +
               " by group or others (mode " + mode + "; run: chmod 600 " + path + ")";
  }
  // Root's files, or those of the user the server runs as (CAP_NET_ADMIN without root): any
  // other owner can read or replace the file whatever its mode says.
  if (info->owner != 0 && info->owner != platform::effective_uid()) {
    if (!problems.empty())
      problems += ", and ";
    problems += "owned by uid " + std::to_string(info->owner) +
                ", neither root nor this server's user (run: chown root " + path + ")";
  }
  if (problems.empty())
    return std::nullopt;
  return path + " (" + std::string(what) + ") is " + problems;
}

crypto::PrivateKey load_or_create_private_key(const std::string& path, std::string* warning) {
  crypto::PrivateKey key;
  auto info = platform::file_info(path);
  if (!info) {
    if (info.code() != ENOENT)
      throw std::runtime_error(path + ": " + info.message());
    key = crypto::generate_private_key(crypto::SystemRandom::instance());
    std::string text = crypto::secret_to_base64(key) + "\n";
    auto created = platform::create_file(path, text, 0600);
    secure_zero(text.data(), text.size());
    if (!created)
      throw std::runtime_error(path + ": cannot create the private key file: " + created.message());
    return key;
  }
  return load_private_key(path, warning);
}

crypto::PrivateKey load_private_key(const std::string& path, std::string* warning) {
  crypto::PrivateKey key;
  if (warning)
    if (auto w = private_file_warning(path, "the WireGuard private key"))
      *warning = *w;
  auto contents = platform::read_file(path, 4096);
  if (!contents)
    throw std::runtime_error(path + ": cannot read the private key file: " + contents.message());
  std::string_view text(*contents);
  text = text.substr(0, text.find('\n'));  // the first line
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  const bool ok = crypto::secret_from_base64(text, key);
  secure_zero(contents->data(), contents->size());
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
  // Whoever reads the TLS key can impersonate the enrollment server to holders of invites
  // (whose pin is its certificate); whoever writes the database can enroll anyone.
  if (auto w = private_file_warning(config.tls_key_file(), "the control channel's TLS key"))
    s.warnings.push_back(*w);
  s.store = open_sqlite_store(config.database);
  if (auto w = private_file_warning(config.database, "the lease database"))
    s.warnings.push_back(*w);
  s.registry = std::make_unique<Registry>(config, *s.store, s.public_key);
  return s;
}

}  // namespace warren::server
