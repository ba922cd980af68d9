// platform/conntrack.h on Linux, in a private network namespace (root): entries made through
// ctnetlink are deleted exactly when they name the address in either tuple, both families.
#include "platform/conntrack.h"

#include <gtest/gtest.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

net::IpAddress ip(const char* s) {
  return *net::IpAddress::parse(s);
}

struct Flow {
  const char *orig_src, *orig_dst, *reply_src, *reply_dst;
  std::uint16_t sport;
};

// Inserts a UDP entry (as `conntrack -I` does); false on failure.
bool insert(nfct_handle* h, const Flow& f) {
  nf_conntrack* ct = nfct_new();
  const net::IpAddress os = ip(f.orig_src), od = ip(f.orig_dst), rs = ip(f.reply_src),
                       rd = ip(f.reply_dst);
  const bool v4 = os.is_v4();
  nfct_set_attr_u8(ct, ATTR_L3PROTO, v4 ? AF_INET : AF_INET6);
  nfct_set_attr(ct, v4 ? ATTR_IPV4_SRC : ATTR_IPV6_SRC, os.data());
  nfct_set_attr(ct, v4 ? ATTR_IPV4_DST : ATTR_IPV6_DST, od.data());
  nfct_set_attr(ct, v4 ? ATTR_REPL_IPV4_SRC : ATTR_REPL_IPV6_SRC, rs.data());
  nfct_set_attr(ct, v4 ? ATTR_REPL_IPV4_DST : ATTR_REPL_IPV6_DST, rd.data());
  nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, v4 ? AF_INET : AF_INET6);
  nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
  nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_UDP);
  nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(f.sport));
  nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(53));
  nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(53));
  nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(f.sport));
  nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
  const bool ok = nfct_query(h, NFCT_Q_CREATE, ct) == 0;
  if (!ok)
    ADD_FAILURE() << "NFCT_Q_CREATE " << f.orig_src << " -> " << f.orig_dst << ": "
                  << std::strerror(errno);
  nfct_destroy(ct);
  return ok;
}

int count_entries(nfct_handle* h, std::uint32_t family) {
  int n = 0;
  nfct_callback_register(
      h, NFCT_T_ALL,
      [](nf_conntrack_msg_type, nf_conntrack*, void* data) -> int {
        ++*static_cast<int*>(data);
        return NFCT_CB_CONTINUE;
      },
      &n);
  EXPECT_EQ(nfct_query(h, NFCT_Q_DUMP, &family), 0) << std::strerror(errno);
  nfct_callback_unregister(h);
  return n;
}

TEST(Conntrack, ForgetsEveryEntryNamingTheAddressInEitherTupleAndNoOther) {
  if (!testing::is_root())
    GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a private network namespace and ctnetlink";
  std::string err = testing::run_in_new_netns([] {
    nfct_handle* h = nfct_open(CONNTRACK, 0);
    if (h == nullptr) {
      ADD_FAILURE() << "nfct_open: " << std::strerror(errno);
      return;
    }
    const Flow flows[] = {
        {"10.9.0.5", "198.51.100.7", "198.51.100.7", "10.9.0.5", 1001},    // the client's own
        {"10.9.0.6", "10.9.0.5", "10.9.0.5", "10.9.0.6", 1002},            // to the client
        {"203.0.113.9", "192.0.2.1", "10.9.0.5", "203.0.113.9", 1003},     // DNAT'ed to it
        {"203.0.113.9", "192.0.2.1", "198.51.100.8", "10.9.0.5", 1004},    // SNAT'ed to it
        {"10.9.0.50", "198.51.100.7", "198.51.100.7", "10.9.0.50", 1005},  // a lookalike
        {"10.9.0.6", "198.51.100.7", "198.51.100.7", "10.9.0.6", 1006},    // another client
        {"fd09::5", "2001:db8::7", "2001:db8::7", "fd09::5", 1007},
        {"2001:db8::9", "fd09::5", "fd09::5", "2001:db8::9", 1008},
        {"fd09::50", "2001:db8::7", "2001:db8::7", "fd09::50", 1009},
    };
    for (const Flow& f : flows)
      if (!insert(h, f))
        return nfct_close(h), void();
    ASSERT_EQ(count_entries(h, AF_INET), 6);
    ASSERT_EQ(count_entries(h, AF_INET6), 3);

    auto ct = open_conntrack();
    ASSERT_TRUE(ct) << ct.message();
    const net::IpAddress client[] = {ip("10.9.0.5")};
    auto n = (*ct)->forget(client);
    ASSERT_TRUE(n) << n.message();
    EXPECT_EQ(*n, 4u);
    EXPECT_EQ(count_entries(h, AF_INET), 2) << "the lookalike and the other client's stay";
    EXPECT_EQ(count_entries(h, AF_INET6), 3) << "another family is another address";
    // Both families at once; a mapped address is the IPv4 one.
    const net::IpAddress both[] = {ip("fd09::5"), ip("::ffff:10.9.0.50")};
    n = (*ct)->forget(both);
    ASSERT_TRUE(n) << n.message();
    EXPECT_EQ(*n, 3u);
    EXPECT_EQ(count_entries(h, AF_INET6), 1);
    n = (*ct)->forget(client);  // nothing left: fine
    ASSERT_TRUE(n) << n.message();
    EXPECT_EQ(*n, 0u);
    EXPECT_EQ(count_entries(h, AF_INET), 1);
    nfct_close(h);
  });
  ASSERT_EQ(err, "");
}

}  // namespace
}  // namespace warren::platform
