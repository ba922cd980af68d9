// WARREN_WORKERS and WARREN_OFFLOADS → the TUN's and the engine's options (runtime/settings.h).
#include "runtime/settings.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "wg/constants.h"

namespace warren::runtime {
namespace {

TEST(WorkerCount, UnsetOrEmptyIsOnePerCpu) {
  EXPECT_EQ(*parse_worker_count(std::nullopt, 6), 6u);
  EXPECT_EQ(*parse_worker_count(std::string(""), 3), 3u);
  EXPECT_EQ(*parse_worker_count(std::nullopt, 0), 1u) << "unknown CPU count";
}

TEST(WorkerCount, ValidValueWinsWithoutAnyCap) {
  // The server used to cap at 8 and ignore the variable; 17 > 8 and > the CPU count.
  for (const char* v : {"1", "3", "17", "64"}) {
    auto n = parse_worker_count(std::string(v), 2);
    ASSERT_TRUE(n.ok()) << v;
    EXPECT_EQ(*n, std::stoul(v)) << v;
  }
}

TEST(WorkerCount, InvalidValueIsAnErrorNamingIt) {
  for (const char* v : {"0", "65", "1000", "4x", "x4", "-2", " 3", "0003"}) {
    auto n = parse_worker_count(std::string(v), 2);
    ASSERT_FALSE(n.ok()) << "'" << v << "'";
    EXPECT_EQ(n.error().code, EINVAL);
    EXPECT_NE(n.message().find(std::string("WARREN_WORKERS: \"") + v + "\""), std::string::npos)
        << n.message();
  }
}

TEST(Assemble, DefaultsGiveOffloadsAndOneQueuePerWorker) {
  Options o;
  o.interface = "wgx0";
  o.engine.listen_port = 51820;
  o.engine.fwmark = 7;
  Environment env;
  env.cpus = 4;
  auto s = assemble(o, env);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->tun.name, "wgx0");
  EXPECT_EQ(s->tun.queues, 4u);
  EXPECT_TRUE(s->tun.vnet_hdr) << "the client used to create its TUN without offloads";
  EXPECT_EQ(s->tun.mtu, wg::kDefaultMtu);
  EXPECT_EQ(s->engine.listen_port, 51820);
  EXPECT_EQ(s->engine.fwmark, 7u);
  EXPECT_TRUE(s->engine.offloads.udp_gso);
  EXPECT_TRUE(s->engine.offloads.udp_gro);
}

TEST(Assemble, EnvironmentPicksWorkersAndOffloads) {
  Options o;
  o.interface = "wgx1";
  o.mtu = 1380;
  Environment env;
  env.cpus = 2;
  env.workers = "3";
  env.offloads = "gso";
  auto s = assemble(o, env);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->tun.queues, 3u);
  EXPECT_EQ(s->tun.mtu, 1380u);
  EXPECT_FALSE(s->tun.vnet_hdr);
  EXPECT_TRUE(s->engine.offloads.udp_gso);
  EXPECT_FALSE(s->engine.offloads.udp_gro);

  env.offloads = "off";
  s = assemble(o, env);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->tun.vnet_hdr);
  EXPECT_FALSE(s->engine.offloads.udp_gso);
}

TEST(Assemble, BadEnvironmentIsAStartupError) {
  Options o;
  o.interface = "wgx2";
  Environment env;
  env.offloads = "tun,turbo";
  auto s = assemble(o, env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("WARREN_OFFLOADS: unknown offload \"turbo\""), std::string::npos)
      << s.message();
  env.offloads.reset();
  env.workers = "many";
  s = assemble(o, env);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("WARREN_WORKERS"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace warren::runtime
