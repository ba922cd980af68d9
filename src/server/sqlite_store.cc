// SQLite implementation of LeaseStore (see store.h).
//
// One connection per store, guarded by a mutex; write transactions are BEGIN IMMEDIATE, so
// they take SQLite's write lock up front and serialise against every other connection (other
// threads' stores, `warren server invite` in another process). busy_timeout makes a second
// writer wait instead of failing. WAL + synchronous=FULL: a commit is on disk (fsync'd WAL)
// when COMMIT returns, so a kill -9 right after an enrollment answer loses nothing.

#include <sqlite3.h>

#include <cstdio>
#include <memory>
#include <mutex>

#include "platform/files.h"
#include "server/store.h"

namespace warren::server {
namespace {

// Version 2 added invites.revoked_at (`warren server invite revoke`), 3 the quarantine table,
// 4 clients.disabled_at (`warren server disable`), 5 clients.mesh_v4_index (the IPv4 collision
// index of a mesh node's key-derived address, docs/MESH.md "Addresses").
constexpr int kSchemaVersion = 5;

constexpr const char* kSchema = R"sql(
CREATE TABLE invites(
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  secret_hash BLOB NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  max_uses    INTEGER NOT NULL,
  uses_left   INTEGER NOT NULL,
  revoked_at  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE clients(
  name        TEXT PRIMARY KEY,
  public_key  TEXT NOT NULL UNIQUE,
  invite_id   TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  revoked_at  INTEGER NOT NULL,
  disabled_at INTEGER NOT NULL DEFAULT 0,
  mesh_v4_index INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE leases(
  address     TEXT PRIMARY KEY,
  client_name TEXT NOT NULL REFERENCES clients(name) ON DELETE CASCADE,
  dynamic     INTEGER NOT NULL
);
CREATE INDEX leases_by_client ON leases(client_name);
CREATE TABLE quarantine(
  address     TEXT PRIMARY KEY,
  client_name TEXT NOT NULL,
  freed_at    INTEGER NOT NULL
);
PRAGMA user_version = 5;
)sql";

// Each entry upgrades a database of version i + 1 to i + 2, inside the opening transaction.
constexpr const char* kMigrations[] = {
    "ALTER TABLE invites ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 2;",
    "CREATE TABLE quarantine(address TEXT PRIMARY KEY, client_name TEXT NOT NULL,"
    " freed_at INTEGER NOT NULL);"
    "PRAGMA user_version = 3;",
    "ALTER TABLE clients ADD COLUMN disabled_at INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 4;",
    "ALTER TABLE clients ADD COLUMN mesh_v4_index INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 5;",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      fail("prepare");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind_blob(int i, const void* p, int n) {
    check(sqlite3_bind_blob(s_, i, p, n, SQLITE_TRANSIENT));
    return *this;
  }
  /// True while there is a row.
  bool step() {
    int r = sqlite3_step(s_);
    if (r == SQLITE_ROW)
      return true;
    if (r == SQLITE_DONE)
      return false;
    fail("step");
  }
  void run() {
    while (step()) {
    }
  }
  std::string text(int c) {
    auto p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }
  std::int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
  std::vector<std::uint8_t> blob(int c) {
    auto p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s_, c));
    return std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(s_, c));
  }

 private:
  void check(int r) {
    if (r != SQLITE_OK)
      fail("bind");
  }
  [[noreturn]] void fail(const char* what) {
    throw StoreError(path_ + ": database " + what + " failed: " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  const std::string& path_;
};

crypto::PublicKey key_of(const std::string& s, const std::string& path) {
  auto k = crypto::PublicKey::from_base64(s);
  if (!k)
    throw StoreError(path + ": corrupt public key in the database");
  return *k;
}

class SqliteStore;

// The invites columns, in the order invite_row() reads them and put_invite() binds them.
constexpr const char* kSelectInvite =
    "SELECT id,name,secret_hash,created_at,expires_at,max_uses,uses_left,revoked_at FROM invites "
    "WHERE id=?";
constexpr const char* kSelectInvites =
    "SELECT id,name,secret_hash,created_at,expires_at,max_uses,uses_left,revoked_at FROM invites "
    "ORDER BY created_at, id";
constexpr const char* kPutInvite =
    "INSERT OR REPLACE INTO invites(id,name,secret_hash,created_at,expires_at,max_uses,uses_left,"
    "revoked_at) VALUES(?,?,?,?,?,?,?,?)";

class SqliteTxn final : public StoreTxn {
 public:
  SqliteTxn(sqlite3* db, const std::string& path) : db_(db), path_(path) {}

  std::optional<InviteRecord> find_invite(std::string_view id) override {
    Stmt s(db_, kSelectInvite, path_);
    s.bind(1, id);
    if (!s.step())
      return std::nullopt;
    return invite_row(s);
  }

  std::vector<InviteRecord> invites() override {
    Stmt s(db_, kSelectInvites, path_);
    std::vector<InviteRecord> out;
    while (s.step())
      out.push_back(invite_row(s));
    return out;
  }

  InviteRecord invite_row(Stmt& s) {
    InviteRecord r;
    r.id = s.text(0);
    r.name = s.text(1);
    auto h = s.blob(2);
    if (h.size() != r.secret_hash.size())
      throw StoreError(path_ + ": corrupt invite in the database");
    std::copy(h.begin(), h.end(), r.secret_hash.begin());
    r.created_at = s.i64(3);
    r.expires_at = s.i64(4);
    r.max_uses = s.i64(5);
    r.uses_left = s.i64(6);
    r.revoked_at = s.i64(7);
    return r;
  }

  void put_invite(const InviteRecord& r) override {
    Stmt s(db_, kPutInvite, path_);
    s.bind(1, r.id).bind(2, r.name).bind_blob(3, r.secret_hash.data(), 32);
    s.bind(4, r.created_at).bind(5, r.expires_at).bind(6, r.max_uses).bind(7, r.uses_left);
    s.bind(8, r.revoked_at);
    s.run();
  }

  std::vector<ClientRecord> select_clients(const char* where, std::string_view arg) {
    std::string sql = std::string(
                          "SELECT name,public_key,invite_id,enrolled_at,last_seen,revoked_at,"
                          "disabled_at,mesh_v4_index FROM clients ") +
                      where + " ORDER BY name";
    Stmt s(db_, sql.c_str(), path_);
    if (!arg.empty())
      s.bind(1, arg);
    std::vector<ClientRecord> out;
    while (s.step()) {
      ClientRecord c;
      c.name = s.text(0);
      c.public_key = key_of(s.text(1), path_);
      c.invite_id = s.text(2);
      c.enrolled_at = s.i64(3);
      c.last_seen = s.i64(4);
      c.revoked_at = s.i64(5);
      c.disabled_at = s.i64(6);
      c.mesh_v4_index = static_cast<std::uint32_t>(s.i64(7));
      out.push_back(std::move(c));
    }
    for (auto& c : out) {
      Stmt l(db_, "SELECT address,dynamic FROM leases WHERE client_name=? ORDER BY address", path_);
      l.bind(1, c.name);
      while (l.step()) {
        auto a = net::IpAddress::parse(l.text(0));
        if (!a)
          throw StoreError(path_ + ": corrupt lease address in the database");
        c.leases.push_back(Lease{*a, l.i64(1) != 0});
      }
      // v4 first, then v6 (text order would put "10.8.0.10" before "10.8.0.2": irrelevant)
      std::stable_sort(c.leases.begin(), c.leases.end(), [](const Lease& x, const Lease& y) {
        return x.address.is_v4() && y.address.is_v6();
      });
    }
    return out;
  }

  std::optional<ClientRecord> find_client_by_name(std::string_view name) override {
    auto v = select_clients("WHERE name=?", name);
    if (v.empty())
      return std::nullopt;
    return v.front();
  }
  std::optional<ClientRecord> find_client_by_key(const crypto::PublicKey& key) override {
    auto v = select_clients("WHERE public_key=?", key.to_base64());
    if (v.empty())
      return std::nullopt;
    return v.front();
  }
  std::vector<ClientRecord> clients() override { return select_clients("", ""); }

  void put_client(const ClientRecord& c) override {
    {
      Stmt s(db_, "SELECT name FROM clients WHERE public_key=? AND name<>?", path_);
      s.bind(1, c.public_key.to_base64()).bind(2, c.name);
      if (s.step())
        throw StoreError("the public key is already enrolled as '" + s.text(0) + "'");
    }
    {
      Stmt s(db_,
             "INSERT INTO clients(name,public_key,invite_id,enrolled_at,last_seen,revoked_at,"
             "disabled_at,mesh_v4_index) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
             "public_key=excluded.public_key,invite_id=excluded.invite_id,"
             "enrolled_at=excluded.enrolled_at,last_seen=excluded.last_seen,"
             "revoked_at=excluded.revoked_at,disabled_at=excluded.disabled_at,"
             "mesh_v4_index=excluded.mesh_v4_index",
             path_);
      s.bind(1, c.name).bind(2, c.public_key.to_base64()).bind(3, c.invite_id);
      s.bind(4, c.enrolled_at).bind(5, c.last_seen).bind(6, c.revoked_at).bind(7, c.disabled_at);
      s.bind(8, static_cast<std::int64_t>(c.mesh_v4_index));
      s.run();
    }
    {
      Stmt s(db_, "DELETE FROM leases WHERE client_name=?", path_);
      s.bind(1, c.name);
      s.run();
    }
    for (const Lease& l : c.leases) {
      Stmt chk(db_, "SELECT client_name FROM leases WHERE address=?", path_);
      chk.bind(1, l.address.to_string());
      if (chk.step())
        throw StoreError("address " + l.address.to_string() + " is already leased to '" +
                         chk.text(0) + "'");
      Stmt s(db_, "INSERT INTO leases(address,client_name,dynamic) VALUES(?,?,?)", path_);
      s.bind(1, l.address.to_string()).bind(2, c.name).bind(3, std::int64_t{l.dynamic ? 1 : 0});
      s.run();
    }
  }

  std::set<net::IpAddress> leased_addresses() override {
    Stmt s(db_, "SELECT address FROM leases", path_);
    std::set<net::IpAddress> out;
    while (s.step()) {
      auto a = net::IpAddress::parse(s.text(0));
      if (!a)
        throw StoreError(path_ + ": corrupt lease address in the database");
      out.insert(*a);
    }
    return out;
  }

  void put_quarantine(const Quarantined& q) override {
    Stmt s(db_, "INSERT OR REPLACE INTO quarantine(address,client_name,freed_at) VALUES(?,?,?)",
           path_);
    s.bind(1, q.address.to_string()).bind(2, q.client_name).bind(3, q.freed_at);
    s.run();
  }

  std::vector<Quarantined> quarantined() override {
    Stmt s(db_, "SELECT address,client_name,freed_at FROM quarantine ORDER BY freed_at", path_);
    std::vector<Quarantined> out;
    while (s.step()) {
      auto a = net::IpAddress::parse(s.text(0));
      if (!a)
        throw StoreError(path_ + ": corrupt quarantined address in the database");
      out.push_back(Quarantined{*a, s.text(1), s.i64(2)});
    }
    return out;
  }

  void end_quarantine(const net::IpAddress& address) override {
    Stmt s(db_, "DELETE FROM quarantine WHERE address=?", path_);
    s.bind(1, address.to_string());
    s.run();
  }

 private:
  sqlite3* db_;
  const std::string& path_;
};

// What LeaseStore::read hands out: the reads of a SqliteTxn, and a StoreError for any write,
// so that a read-only path cannot turn into a commit (and an fsync) by mistake.
class ReadOnlyTxn final : public StoreTxn {
 public:
  explicit ReadOnlyTxn(SqliteTxn& txn) : txn_(txn) {}
  std::optional<InviteRecord> find_invite(std::string_view id) override {
    return txn_.find_invite(id);
  }
  void put_invite(const InviteRecord&) override { refuse("put_invite"); }
  std::vector<InviteRecord> invites() override { return txn_.invites(); }
  std::optional<ClientRecord> find_client_by_name(std::string_view name) override {
    return txn_.find_client_by_name(name);
  }
  std::optional<ClientRecord> find_client_by_key(const crypto::PublicKey& key) override {
    return txn_.find_client_by_key(key);
  }
  void put_client(const ClientRecord&) override { refuse("put_client"); }
  std::vector<ClientRecord> clients() override { return txn_.clients(); }
  std::set<net::IpAddress> leased_addresses() override { return txn_.leased_addresses(); }
  void put_quarantine(const Quarantined&) override { refuse("put_quarantine"); }
  std::vector<Quarantined> quarantined() override { return txn_.quarantined(); }
  void end_quarantine(const net::IpAddress&) override { refuse("end_quarantine"); }

 private:
  [[noreturn]] static void refuse(const char* what) {
    throw StoreError(std::string("internal error: ") + what + " inside a read-only transaction");
  }
  SqliteTxn& txn_;
};

class SqliteStore final : public LeaseStore {
 public:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {
    // Create the file 0600 ourselves: SQLite would create it with the umask's mode.
    if (auto st = platform::ensure_file(path_, 0600); !st)
      throw StoreError(path_ + ": cannot open the database: " + st.message());
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string m = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw StoreError(path_ + ": cannot open the database: " + m);
    }
    sqlite3_busy_timeout(db_, 10'000);
    try {
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=FULL");
      exec("PRAGMA foreign_keys=ON");
      transaction([&](StoreTxn&) {
        Stmt v(db_, "PRAGMA user_version", path_);
        int version = v.step() ? static_cast<int>(v.i64(0)) : 0;
        if (version == 0) {
          exec(kSchema);
        } else if (version < kSchemaVersion) {
          for (int from = version; from < kSchemaVersion; ++from)
            exec(kMigrations[from - 1]);
        } else if (version > kSchemaVersion) {
          throw StoreError(path_ + ": database schema version " + std::to_string(version) +
                           " is newer than this warren understands (" +
                           std::to_string(kSchemaVersion) + ")");
        }
      });
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
    for (const char* suffix : {"-wal", "-shm"})
      (void)platform::set_file_mode(path_ + suffix, 0600);  // absent until first written: fine
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  void transaction(const std::function<void(StoreTxn&)>& fn) override {
    std::lock_guard lock(mutex_);
    exec("BEGIN IMMEDIATE");
    try {
      SqliteTxn txn(db_, path_);
      fn(txn);
      exec("COMMIT");
    } catch (...) {
      (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void read(const std::function<void(StoreTxn&)>& fn) override {
    std::lock_guard lock(mutex_);
    // A deferred transaction: a read lock (a WAL snapshot) at the first read, no write lock,
    // and its end writes nothing.
    exec("BEGIN DEFERRED");
    try {
      SqliteTxn txn(db_, path_);
      ReadOnlyTxn ro(txn);
      fn(ro);
    } catch (...) {
      (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    exec("COMMIT");
  }

  std::vector<ClientRecord> clients() override {
    std::vector<ClientRecord> out;
    read([&](StoreTxn& t) { out = t.clients(); });
    return out;
  }

  std::int64_t data_version() override {
    std::lock_guard lock(mutex_);
    // SQLite's per-connection counter: it moves when another connection commits.
    Stmt v(db_, "PRAGMA data_version", path_);
    if (!v.step())
      throw StoreError(path_ + ": cannot read PRAGMA data_version");
    return v.i64(0);
  }

  void touch(const std::vector<std::pair<std::string, std::int64_t>>& seen) override {
    if (seen.empty())
      return;
    std::lock_guard lock(mutex_);
    exec("BEGIN IMMEDIATE");
    try {
      for (const auto& [name, t] : seen) {
        Stmt s(db_, "UPDATE clients SET last_seen=? WHERE name=? AND last_seen<?", path_);
        s.bind(1, t).bind(2, name).bind(3, t);
        s.run();
      }
      exec("COMMIT");
    } catch (...) {
      (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void limit_pages(int extra) {
    std::lock_guard lock(mutex_);
    Stmt c(db_, "PRAGMA page_count", path_);
    std::int64_t pages = c.step() ? c.i64(0) : 0;
    exec(("PRAGMA max_page_count=" + std::to_string(pages + extra)).c_str());
  }

 private:
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw StoreError(path_ + ": database write failed: " + m);
    }
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

}  // namespace

std::unique_ptr<LeaseStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

warren::Result<StoreSchema> read_sqlite_schema(const std::string& path) {
  auto info = platform::file_info(path);
  if (!info)
    return info.error();
  // A read-only connection to a WAL database makes the -wal and -shm files when they are
  // missing (and cannot remove them again). Without a -wal file every commit is in the main
  // file, so `immutable` (no locks, no side files) reads the truth; with one, a server runs or
  // stopped without its last checkpoint, and the WAL may hold the newest user_version. (A -wal
  // without its -shm, which only deleting files by hand leaves, is read like no -wal: a
  // read-only connection would have to create the -shm.)
  const bool wal =
      platform::file_info(path + "-wal").ok() && platform::file_info(path + "-shm").ok();
  std::string uri = "file:";
  for (char c : path) {  // RFC 3986 escapes for the characters a URI path may not hold
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  uri += wal ? "?mode=ro" : "?immutable=1";
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> owner(db, sqlite3_close);
  if (rc != SQLITE_OK)
    return warren::Error(EINVAL, db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) != SQLITE_OK)
    return warren::Error(EINVAL, sqlite3_errmsg(db));
  rc = sqlite3_step(st);
  StoreSchema out;
  out.supported = kSchemaVersion;
  if (rc == SQLITE_ROW)
    out.version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW)
    return warren::Error(EINVAL, sqlite3_errmsg(db));
  return out;
}

void limit_sqlite_store_pages(LeaseStore& store, int extra_pages) {
  dynamic_cast<SqliteStore&>(store).limit_pages(extra_pages);
}

}  // namespace warren::server
