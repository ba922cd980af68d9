#pragma once
/// Registry: the server's enrollment policy over a LeaseStore — invites, enrolling, revoking,
/// exporting, idle release. No I/O besides the store; time is passed in (Unix seconds), so
/// tests inject it.
///
/// Enrollment rules (docs/SERVER.md "Enrollment"):
///   * the invite id must exist and SHA-256(secret) must match (constant time); otherwise
///     "invite_invalid" (the same answer for both, so ids cannot be probed);
///   * a re-join — the key is enrolled, and through this very invite (the client record's
///     invite id) — gets its record back: same addresses, a fresh lease if its dynamic one was
///     released, without using up the invite and even if the invite has expired or been used
///     up since (it was good when it enrolled the key). A revoked key is "revoked"; an invite
///     revoked by the operator refuses re-joins too ("invite_revoked"). A re-join that changes
///     nothing is answered from a read-only snapshot: no write lock, commit or fsync, so a
///     flood of re-joins costs reads only. (That the sender holds the key's private half is
///     proven by the enrollment protocol before the request reaches the registry.)
///   * a known key with any other invite is not a re-join: the invite is checked as for a new
///     key (revoked, expired, used up: the same answer as for any key), and a usable one gets
///     "key_in_use" — nothing about the enrolled client (name, addresses, revocation) is told,
///     so holding an old or group invite and another client's public key (`wg show`) gains
///     nothing. An exported client's key has no invite and never re-joins;
///   * otherwise the invite must be unexpired ("invite_expired") with uses left
///     ("invite_used_up"); the name is the invite's name for a single-use invite, and
///     "<invite name>-<client's name>" for a multi-use one; a name enrolled with another
///     key is "name_taken";
///   * a revoked name stays refused ("revoked") until the operator issues a new single-use
///     invite for exactly that name after the revocation: holders of a group invite (or of
///     an old invite) cannot take a revoked member's name, or its reservation, back;
///   * an invite revoked by the operator (`warren server invite revoke ID`) is
///     "invite_revoked" once its secret matched;
///   * a disabled client (`warren server disable NAME`) keeps its record and leases (idle release
///     skips it) but is no peer of the interface; its re-join is "disabled" (checked after
///     "revoked"), until `warren server enable NAME`;
///   * addresses: the client's reservation if it has one; else with strategy dynamic or
///     static-or-dynamic its own quarantined address if it has one, or the lowest free address
///     not in another client's quarantine ("pool_exhausted" when none); with strategy static
///     and no reservation, "no_reservation";
///   * a dynamic address freed by revoke or idle release is quarantined for
///     `[pool] quarantine` (default 1 h) from every client but its former holder;
///   * everything (client, leases, invite use) is one store transaction, committed before the
///     reply is built; any failure changes nothing.
///
/// Mesh mode (config `[mesh]`, docs/MESH.md "Addresses"): a client's addresses follow from its
/// key instead of the pool. Its IPv4 address is plan.assign_v4(identity, taken) — the lowest
/// collision index whose address is not taken by another client's recorded addresses (revoked
/// clients included: their roster entries keep them), the server's tunnel addresses or the mesh
/// DNS responder's addresses — and the index is recorded (ClientRecord::mesh_v4_index); its
/// IPv6 address is plan.v6(identity). Both are static leases: never released for idleness, kept
/// by a re-join, kept on revoke (a revoked node's entry stays in the roster with its address),
/// replaced only when the record gets a new key (a revoked name invited again, an export).
/// The pool's strategy, reservations, idle release and quarantine do not apply (the config
/// refuses [pool.reservations] and strategy "static" with [mesh]). A client enrolled before the
/// server became a coordinator gets its mesh addresses at its next join.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/random.h"
#include "control/enroll.h"
#include "control/status.h"
#include "server/config.h"
#include "server/pool.h"
#include "server/store.h"

namespace warren::server {

class RegistryError : public std::runtime_error {
 public:
  RegistryError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

/// What `warren server clients` calls a client's state: "revoked", else "disabled", else
/// "released" (no lease: its dynamic one was released for idleness; a re-join gets one back),
/// else "active".
std::string_view client_state(const ClientRecord& client);

class Registry {
 public:
  /// `config` and `store` must outlive the registry.
  Registry(const ServerConfig& config, LeaseStore& store, const crypto::PublicKey& server_key);

  /// Stores a new invite and returns its line. `expires` 0 = never; `uses` >= 1.
  std::string create_invite(std::string_view name, std::chrono::seconds expires, int uses,
                            const control::Fingerprint& fingerprint, std::int64_t now);

  /// Every invite, oldest first, with what an operator may see (never the secret).
  std::vector<InviteRecord> invites();
  /// Marks invite ID revoked: it enrolls nobody from now on (clients it enrolled stay). Throws
  /// RegistryError("unknown_invite") / ("already_revoked").
  InviteRecord revoke_invite(std::string_view id, std::int64_t now);

  /// Decides an enrollment request (see the rules above). Never throws.
  control::EnrollReply enroll(const control::EnrollRequest& request, std::int64_t now);

  /// Marks NAME revoked and frees its addresses; returns the record as it was before. Throws
  /// RegistryError("unknown_client") / ("already_revoked").
  ClientRecord revoke(std::string_view name, std::int64_t now);

  /// Takes NAME off the interface without freeing its leases (the caller re-syncs the peers);
  /// returns the record as it is now. Throws RegistryError("unknown_client") / ("revoked") /
  /// ("already_disabled").
  ClientRecord disable(std::string_view name, std::int64_t now);
  /// Undoes disable(). Throws RegistryError("unknown_client") / ("revoked") / ("not_disabled").
  ClientRecord enable(std::string_view name);

  /// Every client, by name, as stored (a read-only snapshot).
  std::vector<ClientRecord> clients() { return store_.clients(); }

  /// Enrolls (or re-keys) NAME with a fresh key pair for a stock WireGuard client: keeps its
  /// addresses when it has them. The private key is returned to be printed once; it is not
  /// stored anywhere.
  struct Exported {
    ClientRecord client;
    crypto::PrivateKey private_key;
  };
  Exported export_client(std::string_view name, std::int64_t now, RandomSource& rng);

  /// Releases dynamic leases of clients not seen (handshake) for the idle time; returns the
  /// names whose leases were released. Does nothing when the idle time is 0.
  std::vector<std::string> release_idle(std::int64_t now);

  /// What a client with this record is told (in mesh mode with the "mesh" object).
  control::Enrollment enrollment_for(const ClientRecord& client) const;
  /// Mesh mode: the addresses `key` with collision index `index` derives, as static leases.
  std::vector<Lease> mesh_leases(const crypto::PublicKey& key, std::uint32_t index) const;
  /// wg-quick text for a stock client.
  std::string wg_quick_config(const ClientRecord& client, const crypto::PrivateKey& key) const;

  /// Pool usage given the leased addresses.
  std::optional<control::PoolUsage> usage(net::Family family,
                                          const std::set<net::IpAddress>& leased) const;
  const std::optional<AddressPool>& pool_v4() const { return pool_v4_; }
  const std::optional<AddressPool>& pool_v6() const { return pool_v6_; }

 private:
  /// The invite named by the request if its secret matches; else throws "invite_invalid".
  InviteRecord check_invite(StoreTxn& txn, const control::EnrollRequest& req) const;
  /// The known client when the request is a re-join through the invite that enrolled its key
  /// (throws "revoked" / "invite_revoked" when that is refused); nullopt when it is not a
  /// re-join.
  std::optional<ClientRecord> check_rejoin(StoreTxn& txn, const control::EnrollRequest& req,
                                           const InviteRecord& inv) const;
  /// Throws unless `inv` may enroll the request's key as a new client.
  void check_new_enrollment(StoreTxn& txn, const control::EnrollRequest& req,
                            const InviteRecord& inv, std::int64_t now) const;
  /// True when allocate() would keep the client's leases exactly as they are.
  bool leases_settled(const ClientRecord& client) const;
  /// The client's leases after (re)allocation; throws RegistryError. Skips addresses in
  /// another client's quarantine, and gives `name` its own quarantined address back first.
  std::vector<Lease> allocate(StoreTxn& txn, const std::string& name,
                              const std::vector<Lease>& current, std::int64_t now) const;
  /// Mesh mode: the key-derived leases of a client with key `key` whose current leases are
  /// `current`, derived with collision index `index` (in/out: kept, with the leases, when they
  /// are already the derived ones and still free; else the newly assigned index). Throws
  /// RegistryError("pool_exhausted") when no collision index up to mesh::kMaxV4Index is free.
  std::vector<Lease> allocate_mesh(StoreTxn& txn, const crypto::PublicKey& key,
                                   const std::vector<Lease>& current, std::uint32_t& index) const;
  /// Mesh mode: true when `c`'s leases are exactly the addresses its key and index derive.
  bool mesh_leases_settled(const ClientRecord& c) const;
  /// Quarantines the dynamic leases `name` held in `before` and no longer holds in `after`.
  void quarantine_freed(StoreTxn& txn, const std::string& name, const std::vector<Lease>& before,
                        const std::vector<Lease>& after, std::int64_t now) const;

  const ServerConfig& config_;
  LeaseStore& store_;
  crypto::PublicKey server_key_;
  std::optional<AddressPool> pool_v4_, pool_v6_;
};

}  // namespace warren::server
