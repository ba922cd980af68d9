// The per-source admission count shared by the enrollment server and the relay.

#include "net/source_limiter.h"

#include <gtest/gtest.h>

namespace warren::net {
namespace {

IpAddress ip(const char* s) {
  auto a = IpAddress::parse(s);
  EXPECT_TRUE(a) << s;
  return *a;
}

TEST(SourceLimiter, CapsEachSourceAndFreesOnRemove) {
  SourceLimiter l(2);
  const IpAddress a = SourceLimiter::key(ip("192.0.2.1")), b = SourceLimiter::key(ip("192.0.2.2"));
  EXPECT_FALSE(l.full(a));
  l.add(a);
  l.add(a);
  EXPECT_TRUE(l.full(a));
  EXPECT_FALSE(l.full(b)) << "another address has its own count";
  EXPECT_EQ(l.count(a), 2u);
  l.remove(a);
  EXPECT_FALSE(l.full(a));
  l.remove(a);
  EXPECT_EQ(l.sources(), 0u) << "a source at zero is forgotten";
  l.remove(a);  // nothing held: no underflow
  EXPECT_EQ(l.count(a), 0u);
}

TEST(SourceLimiter, AnIpv6Slash64IsOneSource) {
  SourceLimiter l(1);
  const IpAddress a = SourceLimiter::key(ip("2001:db8:1:2::1"));
  const IpAddress b = SourceLimiter::key(ip("2001:db8:1:2:ffff::9"));
  const IpAddress c = SourceLimiter::key(ip("2001:db8:1:3::1"));
  EXPECT_EQ(a, b);
  l.add(a);
  EXPECT_TRUE(l.full(b));
  EXPECT_FALSE(l.full(c));
}

}  // namespace
}  // namespace warren::net
