#pragma once
/// LeaseStore: where the server keeps invites, enrolled clients and their address leases.
///
/// The interface is transactional: transaction(fn) runs fn against a StoreTxn; when fn returns
/// the changes are committed durably (fsync'd) before transaction() returns; when fn throws,
/// nothing is changed and the exception propagates. Write transactions are serialised — also
/// across processes sharing the same database (`warren server invite` while the server runs)
/// — so reading the used addresses and inserting a lease inside one transaction can never hand
/// one address to two clients. The SQLite implementation is the embedded default; a shared
/// database for several gateways would be another implementation of the same interface.
///
/// Storage failures (disk full, read-only file, corruption) throw StoreError.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"

namespace warren::server {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Lease {
  net::IpAddress address;
  bool dynamic = true;  ///< false: a static reservation (never released for idleness)
  friend bool operator==(const Lease&, const Lease&) = default;
};

struct ClientRecord {
  std::string name;
  crypto::PublicKey public_key;
  std::string invite_id;         ///< "" for exported clients
  std::int64_t enrolled_at = 0;  ///< Unix seconds
  std::int64_t last_seen = 0;    ///< last handshake seen by the server, 0 = never
  std::int64_t revoked_at = 0;   ///< 0 = not revoked
  /// 0 = enabled; else Unix seconds of `warren server disable`: the client keeps its record and
  /// leases but is no peer of the interface, and its re-joins are refused ("disabled").
  std::int64_t disabled_at = 0;
  std::vector<Lease> leases;
  /// Mesh mode: the IPv4 collision index its key-derived address was assigned with
  /// (mesh::AddressPlan::assign_v4), recorded so that every node derives the same address and
  /// the address never changes while the key does not. 0 outside mesh mode.
  std::uint32_t mesh_v4_index = 0;
  bool revoked() const { return revoked_at != 0; }
  bool disabled() const { return disabled_at != 0; }
};

struct InviteRecord {
  std::string id;
  std::string name;
  std::array<std::uint8_t, 32> secret_hash{};  ///< SHA-256 of the secret; never the secret
  std::int64_t created_at = 0;
  std::int64_t expires_at = 0;  ///< 0 = never
  std::int64_t max_uses = 1;
  std::int64_t uses_left = 1;
  std::int64_t revoked_at = 0;  ///< 0 = valid; else Unix seconds of `warren server invite revoke`
  bool revoked() const { return revoked_at != 0; }
};

/// A freed dynamic address, kept from other clients until `freed_at` + the quarantine.
struct Quarantined {
  net::IpAddress address;
  std::string client_name;  ///< who held it: the one client that may take it back early
  std::int64_t freed_at = 0;
};

class StoreTxn {
 public:
  virtual ~StoreTxn() = default;
  virtual std::optional<InviteRecord> find_invite(std::string_view id) = 0;
  /// Inserts or replaces by id.
  virtual void put_invite(const InviteRecord& invite) = 0;
  /// Every invite, oldest first.
  virtual std::vector<InviteRecord> invites() = 0;
  virtual std::optional<ClientRecord> find_client_by_name(std::string_view name) = 0;
  virtual std::optional<ClientRecord> find_client_by_key(const crypto::PublicKey& key) = 0;
  /// Inserts or replaces by name; the client's leases become exactly `client.leases`. Throws
  /// StoreError if an address is leased to another client or the key belongs to another name.
  virtual void put_client(const ClientRecord& client) = 0;
  virtual std::vector<ClientRecord> clients() = 0;
  /// Every leased address (both families).
  virtual std::set<net::IpAddress> leased_addresses() = 0;
  /// Records (or renews) a freed address's quarantine.
  virtual void put_quarantine(const Quarantined& q) = 0;
  /// Every quarantined address, expired ones included.
  virtual std::vector<Quarantined> quarantined() = 0;
  /// Ends a quarantine (the address was leased again, or its time is up); absent is fine.
  virtual void end_quarantine(const net::IpAddress& address) = 0;
};

class LeaseStore {
 public:
  virtual ~LeaseStore() = default;
  virtual void transaction(const std::function<void(StoreTxn&)>& fn) = 0;
  /// Runs fn against a consistent read-only snapshot: no write lock is taken (other writers
  /// are not held up) and nothing is committed or fsync'd. fn must only read: a write
  /// (put_*, end_quarantine) throws StoreError, and nothing changes. Exceptions from fn
  /// propagate. This is what keeps the common re-join cheap (registry.h).
  virtual void read(const std::function<void(StoreTxn&)>& fn) = 0;
  /// A read-only snapshot of every client.
  virtual std::vector<ClientRecord> clients() = 0;
  /// Records handshake times (name -> Unix seconds) in one transaction; unknown names ignored.
  virtual void touch(const std::vector<std::pair<std::string, std::int64_t>>& seen) = 0;
  /// A number that changes whenever another connection or process commits to the store (not
  /// on this store's own commits). The running server polls it, so a revocation written while
  /// the server could not be told (busy, stopped for a moment) still takes effect by itself.
  virtual std::int64_t data_version() = 0;
};

/// Opens (creating when missing, file mode 0600) a SQLite database in WAL mode with
/// synchronous=FULL; creates or checks the schema (PRAGMA user_version). Throws StoreError
/// naming the file, e.g. for a schema from a newer warren.
std::unique_ptr<LeaseStore> open_sqlite_store(const std::string& path);

/// What `warren server check` learns of a database without changing it.
struct StoreSchema {
  int version = 0;    ///< PRAGMA user_version; 0 = empty (the schema is made at start)
  int supported = 0;  ///< the version this build writes; an older one is migrated at start
};

/// Reads the schema version of the existing database at `path` read-only, creating nothing
/// (no -wal or -shm file): through its WAL when one exists, else straight from the file.
/// ENOENT when it does not exist; EINVAL ("not a database", ...) when SQLite cannot read it.
[[nodiscard]] warren::Result<StoreSchema> read_sqlite_schema(const std::string& path);

/// Test hook: limits the database to its current size plus `extra_pages` pages, so that the
/// next growing write fails like a full disk (SQLITE_FULL). Only for stores made by
/// open_sqlite_store.
void limit_sqlite_store_pages(LeaseStore& store, int extra_pages);

}  // namespace warren::server
