// The rtnetlink calls the client added (rules, routes with tables > 255 / gateways / metrics,
// route lookup, address listing) against the real kernel, in a private network namespace, and
// the same calls against FakeNetConfig, which must answer with the same error codes.
#include <gtest/gtest.h>

#include <cerrno>

#include "platform/fake/fake_netconfig.h"
#include "platform/netlink.h"
#include "platform/tun_device.h"
#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

net::Prefix pfx(const char* s) {
  return *net::Prefix::parse(s);
}
net::IpAddress ip(const char* s) {
  return *net::IpAddress::parse(s);
}

// The sequence both implementations must pass; `ifindex` is an up link.
void exercise(NetConfig& nc, std::uint32_t ifindex) {
  ASSERT_TRUE(nc.add_address(ifindex, pfx("10.50.0.1/24")).ok());
  EXPECT_EQ(nc.add_address(ifindex, pfx("10.50.0.1/24")).code(), EEXIST);
  auto addrs = nc.list_addresses(ifindex);
  ASSERT_TRUE(addrs.ok());
  EXPECT_NE(std::find(addrs->begin(), addrs->end(), pfx("10.50.0.1/24")), addrs->end());

  const RouteSpec split{pfx("10.60.0.0/16"), ifindex, 0, {}, {}};
  ASSERT_TRUE(nc.add_route(split).ok());
  EXPECT_EQ(nc.add_route(split).code(), EEXIST);
  auto got = nc.route_get(ip("10.60.7.7"));
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_EQ(got->ifindex, ifindex);
  EXPECT_EQ(got->destination, pfx("10.60.7.7/32"));

  const RouteSpec via{pfx("10.70.0.0/16"), ifindex, 0, 51820u, ip("10.50.0.254")};
  ASSERT_TRUE(nc.add_route(via).ok());
  got = nc.route_get(ip("10.70.1.1"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->gateway, ip("10.50.0.254"));
  EXPECT_TRUE(nc.delete_route(via).ok());
  EXPECT_EQ(nc.delete_route(via).code(), ESRCH);

  const RouteSpec big_table{pfx("0.0.0.0/0"), ifindex, 51820, {}, {}};
  ASSERT_TRUE(nc.add_route(big_table).ok());
  EXPECT_TRUE(nc.delete_route(big_table).ok());
  EXPECT_EQ(nc.delete_route(big_table).code(), ESRCH);

  for (net::Family f : {net::Family::kV4, net::Family::kV6}) {
    RuleSpec not_mark;
    not_mark.family = f;
    not_mark.table = 51820;
    not_mark.fwmark = 51820;
    not_mark.invert = true;
    not_mark.priority = 32000;
    ASSERT_TRUE(nc.add_rule(not_mark).ok());
    EXPECT_EQ(nc.add_rule(not_mark).code(), EEXIST);
    RuleSpec suppress;
    suppress.family = f;
    suppress.table = kMainTable;
    suppress.suppress_prefixlength = 0;
    suppress.priority = 31999;
    ASSERT_TRUE(nc.add_rule(suppress).ok());
    EXPECT_TRUE(nc.delete_rule(suppress).ok());
    EXPECT_TRUE(nc.delete_rule(not_mark).ok());
    EXPECT_EQ(nc.delete_rule(not_mark).code(), ENOENT);
  }
  EXPECT_EQ(nc.route_get(ip("192.0.2.1")).code(), ENETUNREACH);
  EXPECT_TRUE(nc.delete_route(split).ok());
  EXPECT_TRUE(nc.delete_address(ifindex, pfx("10.50.0.1/24")).ok());
  EXPECT_EQ(nc.delete_address(ifindex, pfx("10.50.0.1/24")).code(), EADDRNOTAVAIL);
}

TEST(NetlinkRules, KernelRulesRoutesLookupsAddresses) {
  if (!testing::is_root())
    GTEST_SKIP() << "needs root (a private network namespace and a TUN device)";
  const std::string err = testing::run_in_new_netns([] {
    auto nc = open_net_config();
    ASSERT_TRUE(nc.ok());
    auto tun = create_tun(TunOptions{.name = "wrt0", .queues = 1, .mtu = 1420});
    ASSERT_TRUE(tun.ok()) << tun.message();
    const std::uint32_t ifindex = (*tun)->ifindex();
    ASSERT_TRUE((*nc)->set_up(ifindex, true).ok());
    exercise(**nc, ifindex);
  });
  if (!err.empty())
    GTEST_SKIP() << err;
}

TEST(NetlinkRules, FakeAnswersLikeTheKernel) {
  fake::FakeNetConfig nc;
  const auto ifindex = nc.add_link("wrt0", 1420, true);
  exercise(nc, ifindex);
}

}  // namespace
}  // namespace warren::platform
