#pragma once
/// FakeConntrack: an in-memory conntrack table for tests of code that cleans it up.
///
/// Entries are the four addresses of a flow's two tuples; forget() removes those that
/// name one of the addresses exactly as the Linux implementation does (platform/conntrack.h), and
/// every call is recorded. `fail_next(code)` makes the next call fail with that errno.
///
/// Thread-safety: one thread at a time (tests).

#include <optional>
#include <vector>

#include "platform/conntrack.h"

namespace warren::platform::fake {

struct FakeFlow {
  net::IpAddress orig_src, orig_dst, reply_src, reply_dst;
  friend bool operator==(const FakeFlow&, const FakeFlow&) = default;
};

class FakeConntrack final : public Conntrack {
 public:
  warren::Result<std::size_t> forget(std::span<const net::IpAddress> addresses) override;

  /// A flow from `src` to `dst`, not translated (reply = the original reversed).
  void add_flow(const net::IpAddress& src, const net::IpAddress& dst);
  std::vector<FakeFlow> flows;            ///< the table
  std::vector<net::IpAddress> forgotten;  ///< every address given to forget(), in order
  void fail_next(int code) { fail_next_ = code; }

 private:
  std::optional<int> fail_next_;
};

}  // namespace warren::platform::fake
