// The FHS default of `warren server` (apps/warren/server_paths.h): state named beside a config
// in /etc/warren goes to /var/lib/warren unless it already exists beside the config.
#include "server_paths.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace warren::apps {
namespace {

struct Disk {
  std::set<std::string> files;
  bool operator()(const std::string& p) const { return files.count(p) != 0; }
};

TEST(ServerPaths, InstalledLayoutPutsNewStateInVarLib) {
  Disk disk;
  EXPECT_EQ(server_state_path("/etc/warren/server.db", "/etc/warren", disk),
            "/var/lib/warren/server.db");
  EXPECT_EQ(server_state_path("/etc/warren/warren0.key", "/etc/warren", disk),
            "/var/lib/warren/warren0.key");
}

TEST(ServerPaths, StateAlreadyBesideTheConfigStaysThere) {
  // A server installed before the rule: its database and key live in /etc/warren.
  Disk disk{{"/etc/warren/server.db", "/etc/warren/warren0.key"}};
  EXPECT_EQ(server_state_path("/etc/warren/server.db", "/etc/warren", disk),
            "/etc/warren/server.db");
  EXPECT_EQ(server_state_path("/etc/warren/warren0.key", "/etc/warren", disk),
            "/etc/warren/warren0.key");
  // Each file is decided on its own: a key provided in /etc, a database made in /var/lib.
  Disk key_only{{"/etc/warren/warren0.key"}};
  EXPECT_EQ(server_state_path("/etc/warren/warren0.key", "/etc/warren", key_only),
            "/etc/warren/warren0.key");
  EXPECT_EQ(server_state_path("/etc/warren/server.db", "/etc/warren", key_only),
            "/var/lib/warren/server.db");
}

TEST(ServerPaths, NamesElsewhereAreUsedAsGiven) {
  Disk disk;
  EXPECT_EQ(server_state_path("/srv/warren/server.db", "/etc/warren", disk),
            "/srv/warren/server.db");
  EXPECT_EQ(server_state_path("/etc/warren/keys/warren0.key", "/etc/warren", disk),
            "/etc/warren/keys/warren0.key");
}

TEST(ServerPaths, ConfigsOutsideEtcWarrenKeepStateBesideThem) {
  Disk disk;
  EXPECT_EQ(server_state_path("/tmp/t1/server.db", "/tmp/t1", disk), "/tmp/t1/server.db");
  EXPECT_EQ(server_state_path("/etc/other/server.db", "/etc/other", disk), "/etc/other/server.db");
  EXPECT_EQ(server_state_path("./server.db", ".", disk), "./server.db");
  // A config in /etc/warren/site naming a file in /etc/warren: not the installed layout.
  EXPECT_EQ(server_state_path("/etc/warren/server.db", "/etc/warren/site", disk),
            "/etc/warren/server.db");
}

TEST(ServerPaths, OtherRootsForTheSameRule) {
  Disk disk;
  EXPECT_EQ(server_state_path("/x/etc/a.db", "/x/etc", disk, "/x/etc", "/x/state"),
            "/x/state/a.db");
}

}  // namespace
}  // namespace warren::apps
