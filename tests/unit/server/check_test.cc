// `warren server check` (server/check.h): a good config passes, and each kind of problem the
// server would stop at fails naming the file (and line) and the key; warnings do not fail;
// nothing is ever created (the directory listing is compared before and after).

#include "server/check.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "platform/datagram.h"
#include "platform/files.h"
#include "platform/process.h"
#include "platform/tcp.h"
#include "platform/udp.h"
#include "server/state.h"

namespace warren::server {
namespace {

namespace fs = std::filesystem;

/// A port nobody holds right now (UDP on every address, TCP on loopback): the kernel's pick.
std::uint16_t free_udp_port() {
  platform::BindOptions o;
  o.buffer_bytes = 0;
  auto b = platform::make_system_bind_factory()->open(o);
  return b.ok() ? (*b)->port() : 0;
}
std::uint16_t free_tcp_port() {
  auto l = platform::tcp_listen("127.0.0.1:0");
  return l.ok() ? (*l)->port() : 0;
}

class CheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_check_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
    udp_ = free_udp_port();
    tcp_ = free_tcp_port();
    metrics_ = free_tcp_port();
    ASSERT_NE(udp_, 0);
    ASSERT_NE(tcp_, 0);
    ASSERT_NE(metrics_, 0);
  }
  void TearDown() override { (void)!std::system(("rm -rf " + dir_).c_str()); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string config() const { return path("server.toml"); }

  /// The config text; `extra` goes into [interface] (line 4 on).
  std::string config_text(const std::string& extra = "") const {
    return "[interface]\n"
           "name = \"wchk0\"\n"
           "address_v4 = \"10.77.0.1/24\"\n" +
           extra + "listen_port = " + std::to_string(udp_) +
           "\n"
           "[enrollment]\n"
           "listen = \"127.0.0.1:" +
           std::to_string(tcp_) +
           "\"\n"
           "public_endpoint = \"vpn.example.com:51820\"\n"
           "[metrics]\n"
           "listen = \"127.0.0.1:" +
           std::to_string(metrics_) + "\"\n";
  }
  void write(const std::string& name, const std::string& text, unsigned mode = 0600) const {
    ASSERT_TRUE(platform::replace_file(path(name), text, mode).ok()) << name;
  }
  void write_config(const std::string& extra = "") const {
    write("server.toml", config_text(extra));
  }

  /// Every file under the directory, with its size and mode, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      struct stat st {};
      ::stat(e.path().c_str(), &st);
      out.push_back(e.path().string() + " " + std::to_string(st.st_size) + " " +
                    std::to_string(st.st_mode));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  /// Runs the check and asserts that it created and changed nothing.
  CheckReport check() {
    const auto before = listing();
    CheckReport r = check_server(config());
    EXPECT_EQ(listing(), before) << "the check changed the directory";
    return r;
  }

  std::string dir_;
  std::uint16_t udp_ = 0, tcp_ = 0, metrics_ = 0;
};

std::string dump(const CheckReport& r) {
  std::string out;
  for (const auto& l : r.lines)
    out += std::string(check_level_name(l.level)) + " [" + l.check + "] " + l.message + "\n";
  return out;
}

const CheckLine* line(const CheckReport& r, const std::string& check) {
  for (const auto& l : r.lines)
    if (l.check == check)
      return &l;
  return nullptr;
}

std::size_t count(const CheckReport& r, CheckLevel level) {
  return static_cast<std::size_t>(std::count_if(
      r.lines.begin(), r.lines.end(), [&](const CheckLine& l) { return l.level == level; }));
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(CheckTest, GoodConfigBeforeTheFirstStartPassesAndCreatesNothing) {
  write_config();
  CheckReport r = check();
  EXPECT_TRUE(r.would_start()) << dump(r);
  EXPECT_FALSE(r.server_running);
  EXPECT_EQ(count(r, CheckLevel::kOk), r.lines.size()) << dump(r);
  for (const char* c : {"config", "private_key", "tls", "database", "lock", "udp_port",
                        "enrollment_listen", "metrics_listen"})
    ASSERT_NE(line(r, c), nullptr) << c << "\n" << dump(r);
  EXPECT_EQ(line(r, "config")->message, "config " + config());
  for (const char* c : {"private_key", "tls", "database"})
    EXPECT_TRUE(has(line(r, c)->message, "will be created at first start")) << dump(r);
  EXPECT_TRUE(has(line(r, "udp_port")->message, "UDP port " + std::to_string(udp_) + " is free"));
}

TEST_F(CheckTest, GoodConfigWithStateFilesPasses) {
  write_config();
  const ServerConfig cfg = load_config(config());
  {
    ServerState st = open_state(cfg);  // the key, the TLS identity and the database, as at start
    ASSERT_TRUE(st.warnings.empty());
    // With the store open its -wal and -shm files exist: read through them.
    CheckReport r = check();
    EXPECT_TRUE(r.would_start()) << dump(r);
    EXPECT_EQ(count(r, CheckLevel::kOk), r.lines.size()) << dump(r);
    EXPECT_TRUE(has(line(r, "private_key")->message, st.public_key.to_base64())) << dump(r);
    EXPECT_TRUE(has(line(r, "database")->message, "(schema version ")) << dump(r);
  }
  // Closed (no -wal file): read from the file alone.
  ASSERT_EQ(platform::file_info(cfg.database + "-wal").code(), ENOENT);
  CheckReport r = check();
  EXPECT_TRUE(r.would_start()) << dump(r);
  EXPECT_TRUE(has(line(r, "database")->message, "(schema version ")) << dump(r);
}

TEST_F(CheckTest, BadConfigLineNamesFileLineAndKey) {
  write_config("mtu = 100\n");  // line 4
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  ASSERT_EQ(r.lines.size(), 1u) << dump(r);  // nothing else can be examined
  EXPECT_EQ(r.lines[0].level, CheckLevel::kError);
  EXPECT_TRUE(has(r.lines[0].message, config() + ":4:")) << r.lines[0].message;
  EXPECT_TRUE(has(r.lines[0].message, "interface.mtu: must be 1280..9000")) << r.lines[0].message;
}

TEST_F(CheckTest, MissingConfigFails) {
  CheckReport r = check_server(path("nope.toml"));
  EXPECT_FALSE(r.would_start());
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_TRUE(has(r.lines[0].message, path("nope.toml") + ": cannot read the config file"))
      << r.lines[0].message;
}

TEST_F(CheckTest, UnparsableKeyFileFailsNamingIt) {
  write_config();
  write("wchk0.key", "not a key\n");
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  const CheckLine* l = line(r, "private_key");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->level, CheckLevel::kError);
  EXPECT_TRUE(has(l->message, path("wchk0.key") + ": not a base64 WireGuard private key"))
      << l->message;
  EXPECT_EQ(count(r, CheckLevel::kError), 1u) << dump(r);
}

TEST_F(CheckTest, ReadableKeyIsAWarningOnly) {
  write_config();
  write("wchk0.key", "YBmuLa7Mf2CJK9eJwxAcMGm5ofIqmc2e/LhDqoQcW2I=\n", 0644);
  CheckReport r = check();
  EXPECT_TRUE(r.would_start()) << dump(r);
  ASSERT_EQ(count(r, CheckLevel::kWarning), 1u) << dump(r);
  for (const auto& l : r.lines) {
    if (l.level == CheckLevel::kWarning) {
      EXPECT_EQ(l.check, "private_key");
      EXPECT_TRUE(has(l.message, "readable by group or others (mode 0644")) << l.message;
    }
  }
}

TEST_F(CheckTest, HalfATlsIdentityFails) {
  write_config();
  const ServerConfig cfg = load_config(config());
  { ServerState st = open_state(cfg); }
  ASSERT_EQ(::unlink(cfg.tls_key_file().c_str()), 0);
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  const CheckLine* l = line(r, "tls");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->level, CheckLevel::kError);
  EXPECT_TRUE(has(l->message, cfg.tls_key_file() + ": missing (while ")) << l->message;
}

TEST_F(CheckTest, StateDirectoryThatDoesNotExistFails) {
  write_config("private_key_file = \"keys/server.key\"\n");
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  const CheckLine* l = line(r, "private_key");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->level, CheckLevel::kError);
  EXPECT_TRUE(has(l->message, "its directory " + path("keys") + " does not exist")) << l->message;
  // ... unless the caller says the server makes it at start.
  CheckReport made = check_server(config(), {.place_state = [&](ServerConfig&) {
                                    return std::vector<std::string>{path("keys")};
                                  }});
  EXPECT_TRUE(made.would_start()) << dump(made);
}

void make_database(const std::string& file, int version) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  const std::string sql = "PRAGMA journal_mode=WAL; CREATE TABLE t(x); PRAGMA user_version = " +
                          std::to_string(version) + ";";
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(CheckTest, NewerDatabaseSchemaFails) {
  write_config();
  make_database(path("server.db"), 99);
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  const CheckLine* l = line(r, "database");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->level, CheckLevel::kError);
  EXPECT_TRUE(has(l->message, path("server.db") + ": database schema version 99 is newer"))
      << l->message;
}

TEST_F(CheckTest, OlderDatabaseSchemaWillBeMigrated) {
  write_config();
  make_database(path("server.db"), 1);
  CheckReport r = check();
  EXPECT_TRUE(r.would_start()) << dump(r);
  EXPECT_TRUE(has(line(r, "database")->message, "schema version 1, will be migrated to "))
      << dump(r);
}

TEST_F(CheckTest, NotADatabaseFails) {
  write_config();
  write("server.db", std::string(200, 'x'));
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  EXPECT_TRUE(has(line(r, "database")->message, path("server.db") + ": cannot read the database"))
      << dump(r);
}

TEST_F(CheckTest, TakenPortsFailNamingThePortAndKey) {
  write_config();
  platform::BindOptions o;
  o.port = udp_;
  o.buffer_bytes = 0;
  auto udp = platform::make_system_bind_factory()->open(o);
  ASSERT_TRUE(udp.ok()) << udp.message();
  auto tcp = platform::tcp_listen("127.0.0.1:" + std::to_string(tcp_));
  ASSERT_TRUE(tcp.ok()) << tcp.message();
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  EXPECT_EQ(count(r, CheckLevel::kError), 2u) << dump(r);
  EXPECT_EQ(line(r, "udp_port")->message, config() + ": interface.listen_port: UDP port " +
                                              std::to_string(udp_) +
                                              " is in use by another program");
  EXPECT_EQ(line(r, "enrollment_listen")->message,
            config() + ": enrollment.listen: enrollment listen address 127.0.0.1:" +
                std::to_string(tcp_) + " is in use by another program");
  EXPECT_EQ(line(r, "metrics_listen")->level, CheckLevel::kOk) << dump(r);
}

// A server's UDP sockets are a SO_REUSEPORT group: the check must still see them.
TEST_F(CheckTest, ReusePortGroupIsSeen) {
  write_config();
  platform::BindOptions o;
  o.port = udp_;
  o.buffer_bytes = 0;
  o.reuse_port = true;
  auto udp = platform::make_system_bind_factory()->open(o);
  ASSERT_TRUE(udp.ok()) << udp.message();
  CheckReport r = check();
  EXPECT_EQ(line(r, "udp_port")->level, CheckLevel::kError) << dump(r);
}

TEST_F(CheckTest, RunningServerIsReportedNotAnError) {
  write_config();
  const ServerConfig cfg = load_config(config());
  { ServerState st = open_state(cfg); }
  auto lock = platform::FileLock::acquire(cfg.database + ".lock");  // as run_server does
  ASSERT_TRUE(lock.ok()) << lock.message();
  platform::BindOptions o;
  o.port = udp_;
  o.buffer_bytes = 0;
  auto udp = platform::make_system_bind_factory()->open(o);
  ASSERT_TRUE(udp.ok()) << udp.message();
  CheckReport r = check();
  EXPECT_TRUE(r.server_running);
  EXPECT_TRUE(r.would_start()) << dump(r);
  EXPECT_EQ(line(r, "lock")->message,
            "a server is running on this database (it holds " + cfg.database + ".lock)");
  EXPECT_EQ(line(r, "udp_port")->message, "UDP port " + std::to_string(udp_) +
                                              " is in use by the server running on this database");
}

TEST_F(CheckTest, MetricsOnTheEnrollmentAddressFails) {
  metrics_ = tcp_;
  write_config();
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  EXPECT_TRUE(has(line(r, "metrics_listen")->message, "metrics.listen: 127.0.0.1:")) << dump(r);
}

// [quic] listen: each address is bound as UDP, and one in use is an error naming quic.listen.
TEST_F(CheckTest, QuicListenAddressIsBound) {
  auto held = platform::open_datagram_socket(net::Endpoint{*net::IpAddress::parse("0.0.0.0"), 0});
  ASSERT_TRUE(held.ok()) << held.message();
  const std::uint16_t busy = (*held)->local().port;
  const std::uint16_t free = free_udp_port();
  ASSERT_NE(free, 0);
  write("server.toml",
        config_text() + "[quic]\nlisten = \"0.0.0.0:" + std::to_string(free) + "\"\n");
  CheckReport ok = check();
  EXPECT_TRUE(ok.would_start()) << dump(ok);
  ASSERT_NE(line(ok, "quic_listen"), nullptr) << dump(ok);
  EXPECT_EQ(line(ok, "quic_listen")->message,
            "QUIC listen address 0.0.0.0:" + std::to_string(free) + " is free");

  write("server.toml",
        config_text() + "[quic]\nlisten = \"0.0.0.0:" + std::to_string(busy) + "\"\n");
  CheckReport r = check();
  EXPECT_FALSE(r.would_start());
  EXPECT_EQ(count(r, CheckLevel::kError), 1u) << dump(r);
  EXPECT_TRUE(has(dump(r), config() + ": quic.listen: QUIC listen address 0.0.0.0:" +
                               std::to_string(busy) + " is in use by another program"))
      << dump(r);
}

}  // namespace
}  // namespace warren::server
