// `warren server clients | disable | enable` and `invite --json`, `export --json | --qr`, run
// as a whole against a scratch config and database with no server running (the running
// server's side is tests/integration/test_server.sh): the JSON fields docs/SERVER.md promises,
// the states, the exit codes, the table.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace warren {
namespace {

std::string warren_path() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "warren").string();
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class ServerInventory : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_inv_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
    // A name no server on this machine uses: the commands must find none running.
    std::ofstream(dir_ + "/server.toml")
        << "[interface]\nname = \"winv" << ::getpid() % 100000
        << "\"\naddress_v4 = \"10.91.0.1/24\"\n"
           "[enrollment]\npublic_endpoint = \"vpn.example:51820\"\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  struct Run {
    int rc = -1;
    std::string out, err;
  };
  // `warren server ARGS --config DIR/server.toml`; no key or secret is ever in ARGS.
  Run server(const std::string& args) {
    const std::string cmd = "'" + warren_path() + "' server " + args + " --config '" + dir_ +
                            "/server.toml' >'" + dir_ + "/out' 2>'" + dir_ + "/err'";
    Run r;
    const int status = std::system(cmd.c_str());
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(dir_ + "/out");
    r.err = slurp(dir_ + "/err");
    return r;
  }
  nlohmann::json json_of(const Run& r) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
  nlohmann::json client(const std::string& name) {
    auto j = json_of(server("clients --json"));
    for (const auto& c : j)
      if (c.at("name") == name)
        return c;
    ADD_FAILURE() << name << " not listed: " << j.dump();
    return {};
  }
  std::string dir_;
};

TEST_F(ServerInventory, ExportAndInviteJsonHaveTheDocumentedFields) {
  Run ex = server("export alice --json");
  ASSERT_EQ(ex.rc, 0) << ex.err;
  auto e = json_of(ex);
  EXPECT_EQ(e.at("name"), "alice");
  EXPECT_EQ(e.at("addresses"), nlohmann::json({"10.91.0.2/32"}));
  EXPECT_EQ(e.at("endpoint"), "vpn.example:51820");
  EXPECT_EQ(e.at("mtu"), 1420);
  EXPECT_TRUE(e.at("dns").is_array());
  EXPECT_TRUE(e.at("allowed_ips").is_array());
  EXPECT_TRUE(e.at("persistent_keepalive").is_number_integer());
  const std::string priv = e.at("private_key"), pub = e.at("public_key");
  EXPECT_EQ(priv.size(), 44u);
  EXPECT_EQ(pub.size(), 44u);
  EXPECT_NE(priv, pub);
  EXPECT_NE(e.at("config").get<std::string>().find("PrivateKey = " + priv + "\n"),
            std::string::npos);
  EXPECT_EQ(e.at("server_public_key").get<std::string>().size(), 44u);
  EXPECT_EQ(client("alice").at("public_key"), pub) << "the listed key is the exported one";

  Run inv = server("invite --name bob --expires 2h --uses 3 --json");
  ASSERT_EQ(inv.rc, 0) << inv.err;
  auto i = json_of(inv);
  EXPECT_TRUE(i.at("invite").get<std::string>().starts_with("warren1:"));
  EXPECT_EQ(i.at("id").get<std::string>().size(), 16u);
  EXPECT_EQ(i.at("name"), "bob");
  EXPECT_EQ(i.at("max_uses"), 3);
  EXPECT_EQ(i.at("uses_left"), 3);
  EXPECT_EQ(i.at("expires_at").get<std::int64_t>() - i.at("created_at").get<std::int64_t>(), 7200);
  EXPECT_EQ(i.at("fingerprint").get<std::string>().size(), 64u);
  EXPECT_EQ(i.at("control_endpoint").get<std::string>().empty(), false);
  // The same invite as `invites --json` lists it, by id.
  auto list = json_of(server("invites --json"));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("id"), i.at("id"));
  EXPECT_EQ(server("export alice --json --qr").rc, 2);
}

TEST_F(ServerInventory, ClientsDisableEnableWithoutARunningServer) {
  ASSERT_EQ(server("export alice").rc, 0);
  ASSERT_EQ(server("export carol").rc, 0);
  auto a = client("alice");
  EXPECT_EQ(a.at("state"), "active");
  EXPECT_EQ(a.at("addresses"), nlohmann::json({"10.91.0.2/32"}));
  EXPECT_EQ(a.at("invite_id"), "");  // exported, not invited
  EXPECT_EQ(a.at("last_handshake"), 0);
  EXPECT_EQ(a.at("endpoint"), "");
  EXPECT_EQ(a.at("peer"), false);
  EXPECT_EQ(a.at("server_running"), false);
  EXPECT_EQ(a.at("disabled_at"), 0);
  EXPECT_EQ(a.at("revoked_at"), 0);
  EXPECT_GT(a.at("enrolled_at").get<std::int64_t>(), 1700000000);

  Run d = server("disable alice");
  EXPECT_EQ(d.rc, 0) << d.err;
  EXPECT_NE(d.err.find("disabled alice"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("no server is running"), std::string::npos) << d.err;
  a = client("alice");
  EXPECT_EQ(a.at("state"), "disabled");
  EXPECT_EQ(a.at("addresses"), nlohmann::json({"10.91.0.2/32"})) << "the lease is kept";
  EXPECT_GT(a.at("disabled_at").get<std::int64_t>(), 0);
  EXPECT_EQ(client("carol").at("state"), "active");

  Run again = server("disable alice");
  EXPECT_EQ(again.rc, 1);
  EXPECT_NE(again.err.find("already disabled"), std::string::npos) << again.err;
  Run nobody = server("enable nobody");
  EXPECT_EQ(nobody.rc, 1);
  EXPECT_NE(nobody.err.find("no client named 'nobody'"), std::string::npos) << nobody.err;
  EXPECT_EQ(server("disable").rc, 2);
  EXPECT_EQ(server("enable a b").rc, 2);

  Run table = server("clients");
  EXPECT_EQ(table.rc, 0);
  EXPECT_NE(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("alice  disabled  10.91.0.2/32"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("from the database"), std::string::npos) << table.out;

  ASSERT_EQ(server("enable alice").rc, 0);
  EXPECT_EQ(client("alice").at("state"), "active");
  EXPECT_EQ(client("alice").at("disabled_at"), 0);
  ASSERT_EQ(server("revoke carol").rc, 0);
  EXPECT_EQ(client("carol").at("state"), "revoked");
  EXPECT_EQ(client("carol").at("addresses"), nlohmann::json::array());
  Run dr = server("disable carol");
  EXPECT_EQ(dr.rc, 1);
  EXPECT_NE(dr.err.find("revoked"), std::string::npos) << dr.err;
}

TEST_F(ServerInventory, ExportQrIsASymbolWithItsQuietZone) {
  Run qr = server("export alice --qr=ascii");
  ASSERT_EQ(qr.rc, 0) << qr.err;
  std::vector<std::string> lines;
  std::stringstream ss(qr.out);
  for (std::string l; std::getline(ss, l);)
    lines.push_back(l);
  const int side = static_cast<int>(lines.size());
  const int width = side - 8;
  ASSERT_GE(width, 21);
  EXPECT_EQ((width - 17) % 4, 0) << "a QR symbol is 17 + 4 * version modules wide";
  for (int y = 0; y < side; ++y) {
    ASSERT_EQ(static_cast<int>(lines[y].size()), 2 * side) << y;
    if (y < 4 || y >= side - 4) {
      EXPECT_EQ(lines[y], std::string(2 * side, ' ')) << "quiet zone, line " << y;
    }
  }
  EXPECT_EQ(lines[4].substr(8, 14), std::string(14, '#')) << "the top-left finder's first row";
  EXPECT_EQ(qr.out.find("PrivateKey"), std::string::npos);
  Run utf8 = server("export alice --qr");
  ASSERT_EQ(utf8.rc, 0) << utf8.err;
  EXPECT_NE(utf8.out.find("\u2588"), std::string::npos);
  EXPECT_EQ(std::count(utf8.out.begin(), utf8.out.end(), '\n'), (side + 1) / 2);
}

}  // namespace
}  // namespace warren
