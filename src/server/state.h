#pragma once
/// What a server keeps on disk besides its config: the WireGuard private key, the control
/// channel's certificate and key, and the lease database. The running server and the
/// `warren server invite|revoke|export` commands open the same state, so either may be first:
/// missing files are created (keys 0600) by whoever comes first.

#include <memory>
#include <string>

#include "control/tls.h"
#include "crypto/x25519.h"
#include "server/config.h"
#include "server/registry.h"
#include "server/store.h"

namespace warren::server {

/// Reads a base64 WireGuard private key file, creating it (0600, O_EXCL) with a fresh key when
/// missing. Throws std::runtime_error naming the file. `warning` is set when the file is
/// readable by group or others.
crypto::PrivateKey load_or_create_private_key(const std::string& path, std::string* warning);

struct ServerState {
  crypto::PrivateKey private_key;
  crypto::PublicKey public_key;
  control::TlsIdentity tls;
  std::unique_ptr<LeaseStore> store;
  std::unique_ptr<Registry> registry;  ///< refers to the config passed to open_state
  std::vector<std::string> warnings;   ///< for the operator (key file permissions)
};

/// Opens (creating what is missing) everything above. `config` must outlive the state.
/// Throws std::runtime_error (ConfigError, StoreError, ControlError) naming the file.
ServerState open_state(const ServerConfig& config);

}  // namespace warren::server
