// platform/nftables.h on the real kernel, in a private network namespace (root): a script is
// one transaction (a failing command leaves nothing of the others), list_table, and the error
// codes callers test (ENOENT for a missing table).
#include "platform/nftables.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

TEST(Nftables, ScriptIsOneTransaction) {
  if (!warren::testing::is_root())
    GTEST_SKIP() << "needs root (a network namespace, CAP_NET_ADMIN)";
  const auto error = warren::testing::run_in_new_netns([] {
    auto nft = open_nftables();
    ASSERT_TRUE(nft) << nft.message();
    auto missing = (*nft)->list_table("inet", "warren_t");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.code(), ENOENT) << missing.message();
    ASSERT_TRUE((*nft)
                    ->run("table inet warren_t {\n\tchain c {\n\t\ttype filter hook forward "
                          "priority filter; policy accept;\n\t\tiifname \"x0\" counter accept\n"
                          "\t}\n}\n")
                    .ok());
    auto listed = (*nft)->list_table("inet", "warren_t");
    ASSERT_TRUE(listed) << listed.message();
    EXPECT_NE(listed->find("iifname \"x0\" counter packets 0 bytes 0 accept"), std::string::npos)
        << *listed;
    // The second command fails (no such table), so the first does not happen either.
    auto s = (*nft)->run("delete table inet warren_t\ndelete table inet nonexistent\n");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ENOENT) << s.message();
    EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.message();
    EXPECT_TRUE((*nft)->list_table("inet", "warren_t").ok());
    // Add-then-delete removes a table whether or not it exists (the step's undo).
    for (int i = 0; i < 2; ++i)
      ASSERT_TRUE((*nft)->run("table inet warren_t\ndelete table inet warren_t\n").ok());
    EXPECT_EQ((*nft)->list_table("inet", "warren_t").code(), ENOENT);
    // Bad syntax is an error with nft's message, not a crash or a partial ruleset.
    auto bad = (*nft)->run("table inet warren_t {\n\tchain c {\n\t\tnonsense\n\t}\n}\n");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.message().find("nftables: "), std::string::npos) << bad.message();
    EXPECT_EQ((*nft)->list_table("inet", "warren_t").code(), ENOENT);
  });
  if (!error.empty())
    GTEST_SKIP() << error;
}

}  // namespace
}  // namespace warren::platform
