#pragma once
/// `warren server clients | disable | enable`, and the --json / --qr forms of `invite` and
/// `export` (server_cmd.cc parses the command line, loads the config and opens the state, then
/// hands over here). Every one of them works from the database whether or not the server runs;
/// `clients` adds what only a running server knows (last handshake, endpoint) from its status
/// socket, and disable/enable tell a running server through `notify` as revoke does.
///
///   server_cmd.cc ── cfg, ServerState ──► run_inventory(verb) ──► registry (SQLite)
///                                             │                    status socket (clients: live
///                                             │                    handshakes; disable/enable:
///                                             ▼                    "sync" through notify)
///                                        stdout: table or JSON (docs/SERVER.md "Inventory")
///
/// Nothing here prints the server's private key or an invite's secret, except `invite` itself
/// (its line is the invite) and `export` (the client's new private key, on purpose; never logged).

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/status.h"
#include "server/config.h"
#include "server/state.h"
#include "server/store.h"

namespace warren::apps {

/// clients, disable, enable.
[[nodiscard]] bool is_inventory_verb(std::string_view verb);

/// Runs an inventory verb; `name` is the client of disable/enable. `notify` tells a running
/// server to re-sync and returns the exit code (server_cmd.cc's notify_running_server).
/// Returns the exit code; RegistryError and StoreError propagate (the caller prints them, exit 1).
[[nodiscard]] int run_inventory(std::string_view verb, const std::string& name, bool json,
                                const server::ServerConfig& cfg, server::ServerState& st,
                                std::int64_t now, const std::function<int()>& notify);

/// `warren server clients --json`: one object per client (docs/SERVER.md has the fields).
/// `live` is the running server's status, when one answered: its handshake times and endpoints.
[[nodiscard]] nlohmann::json clients_json(const std::vector<server::ClientRecord>& clients,
                                          const std::optional<control::InterfaceStatus>& live);
/// The same as a table.
[[nodiscard]] std::string clients_table(const std::vector<server::ClientRecord>& clients,
                                        const std::optional<control::InterfaceStatus>& live,
                                        std::int64_t now);

/// `warren server invite --json`: the invite line and what `invites --json` shows of it.
[[nodiscard]] nlohmann::json invite_json(const std::string& line,
                                         const server::InviteRecord& record);

/// How `export` prints: the wg-quick text, a JSON object, or a QR code of the text.
enum class ExportFormat { kText, kJson, kQrUtf8, kQrAscii };

/// Prints an exported client (its config text holds the private key) to stdout in `format`.
/// Every copy of the key made here is wiped before returning. False (with a message on stderr)
/// when the QR code cannot be made.
[[nodiscard]] bool print_export(const server::Registry& registry,
                                const server::ClientRecord& client, const crypto::PrivateKey& key,
                                ExportFormat format);

}  // namespace warren::apps
