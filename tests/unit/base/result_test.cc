#include "base/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace warren {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0)
    return Error(EINVAL, "not positive: " + std::to_string(v));
  return v;
}

Status check_even(int v) {
  if (v % 2 != 0)
    return Error(EINVAL, "odd");
  return ok();
}

TEST(Result, ValueAndError) {
  auto good = parse_positive(4);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(*good, 4);
  EXPECT_EQ(good.code(), 0);
  EXPECT_EQ(good.message(), "");

  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), EINVAL);
  EXPECT_EQ(bad.error().code, EINVAL);
  EXPECT_EQ(bad.message(), "not positive: -1");
}

TEST(Result, StatusHasNoValue) {
  EXPECT_TRUE(check_even(2).ok());
  Status s = check_even(3);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "odd");
}

TEST(Result, ErrnoErrorsNameTheOperation) {
  Error e = Error::from_errno(ENOENT, "open(/nonexistent)");
  EXPECT_EQ(e.text(), "open(/nonexistent): No such file or directory");
  EXPECT_EQ(Error::from_errno(EPERM, nullptr).text(), "Operation not permitted");
  EXPECT_EQ(e.with_context("reading the key").text(),
            "reading the key: open(/nonexistent): No such file or directory");
}

TEST(Result, ZeroIsNeverAnErrorCode) {
  // An Error built from a stale errno of 0 must still read as a failure.
  Result<int> r = Error(0, "lost errno");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EIO);
}

TEST(Result, WouldBlockIsAState) {
  Result<int> r = Error::from_errno(EAGAIN, "recvmmsg");
  EXPECT_TRUE(r.would_block());
  EXPECT_FALSE(parse_positive(-1).would_block());
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(Result, ErrorsPropagateAcrossTypes) {
  auto twice = [](int v) -> Result<std::string> {
    auto r = parse_positive(v);
    if (!r)
      return r.error();
    return std::to_string(*r * 2);
  };
  EXPECT_EQ(*twice(21), "42");
  EXPECT_EQ(twice(0).message(), "not positive: 0");
}

}  // namespace
}  // namespace warren
