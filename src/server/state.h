#pragma once
/// What a server keeps on disk besides its config: the WireGuard private key, the control
/// channel's certificate and key, and the lease database. The running server and the
/// `warren server invite|revoke|export` commands open the same state, so either may be first:
/// missing files are created (keys 0600) by whoever comes first.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/tls.h"
#include "crypto/x25519.h"
#include "server/config.h"
#include "server/registry.h"
#include "server/store.h"

namespace warren::server {

/// Reads a base64 WireGuard private key file, creating it (0600, O_EXCL) with a fresh key when
/// missing. Throws std::runtime_error naming the file. `warning` is set as by
/// private_file_warning().
crypto::PrivateKey load_or_create_private_key(const std::string& path, std::string* warning);
/// The same without creating: a missing file throws std::runtime_error like any unreadable one.
crypto::PrivateKey load_private_key(const std::string& path, std::string* warning);

/// The start-up check of a file that holds a secret or the server's state (the WireGuard key,
/// the control channel's TLS key, the lease database): a warning for the operator when group
/// or others may read or write it, or when it is owned by neither root nor this process's
/// user; nullopt when it is fine or cannot be examined (its opening reports that). Warnings,
/// not refusals: the same treatment for all three files, so an existing installation keeps
/// starting and is told how to fix it. `what` names the file's role in the message.
std::optional<std::string> private_file_warning(const std::string& path, std::string_view what);

struct ServerState {
  crypto::PrivateKey private_key;
  crypto::PublicKey public_key;
  control::TlsIdentity tls;
  std::unique_ptr<LeaseStore> store;
  std::unique_ptr<Registry> registry;  ///< refers to the config passed to open_state
  std::vector<std::string> warnings;   ///< for the operator (file modes and owners)
};

/// Opens (creating what is missing) everything above. `config` must outlive the state.
/// Throws std::runtime_error (ConfigError, StoreError, ControlError) naming the file.
ServerState open_state(const ServerConfig& config);

}  // namespace warren::server
