#pragma once
/// `warren join`: key, enrollment, config file; then the same path as `warren up`.
///
///   CONFIG_DIR/IFNAME.key   the client's private key (created 0600 on first join, reused after,
///                           so joining again with it keeps the address: the server ensures it)
///   CONFIG_DIR/IFNAME.conf  a wg-quick file (0600, written atomically) built from the
///                           enrollment: Address, DNS, MTU; [Peer] the server's key, endpoint,
///                           AllowedIPs = the pushed routes, PersistentKeepalive

#include <chrono>
#include <string>

#include "base/random.h"
#include "client/config.h"
#include "control/enroll.h"

namespace warren::client {

struct JoinOptions {
  std::string interface;
  std::string config_dir = "/etc/warren";
  std::string client_name;  ///< sent to the server; "" lets the invite's name stand
  std::chrono::milliseconds timeout = std::chrono::seconds(20);
};

/// Reads a base64 private key file, or creates one (0600, O_EXCL, O_NOFOLLOW) when it does not
/// exist. `warning` is set when an existing file is group/world-readable; one that is a link,
/// not root's (or ours), or writable by group or others is refused (platform/files.h trusted
/// files). Throws std::runtime_error.
crypto::PrivateKey load_or_create_key(const std::string& path, RandomSource& rng,
                                      std::string* warning = nullptr);

/// The config `join` writes for an enrollment.
ClientConfig config_from_enrollment(const control::Enrollment& e, const crypto::PrivateKey& key,
                                    const std::string& interface,
                                    const std::string& control_endpoint);

/// Writes `text` to `path` with mode 0600 through a temporary file and rename, in a trusted
/// directory (root's or ours, not writable by group or others). Throws std::runtime_error.
void write_private_file(const std::string& path, const std::string& text);

/// Parses the invite, makes or reuses the key, enrolls and writes the config (refusing a
/// config directory that group or others can write, or that someone else owns). Returns the
/// config (as it would be loaded from the file). Throws std::runtime_error with a message for
/// the user (control::EnrollError for refusals by the server).
ClientConfig join(const std::string& invite_text, const JoinOptions& options, RandomSource& rng,
                  std::string* warning = nullptr);

}  // namespace warren::client
