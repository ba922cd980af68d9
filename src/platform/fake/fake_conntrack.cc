#include "platform/fake/fake_conntrack.h"

#include <algorithm>
#include <set>

namespace warren::platform::fake {

warren::Result<std::size_t> FakeConntrack::forget(std::span<const net::IpAddress> addresses) {
  forgotten.insert(forgotten.end(), addresses.begin(), addresses.end());
  if (fail_next_) {
    const int code = *fail_next_;
    fail_next_.reset();
    return warren::Error::from_errno(code, "nfct_query(NFCT_Q_DUMP)");
  }
  std::set<net::IpAddress> gone;
  for (const auto& a : addresses)
    gone.insert(a.unmapped());
  auto named = [&](const net::IpAddress& a) { return gone.count(a.unmapped()) != 0; };
  return static_cast<std::size_t>(std::erase_if(flows, [&](const FakeFlow& f) {
    return named(f.orig_src) || named(f.orig_dst) || named(f.reply_src) || named(f.reply_dst);
  }));
}

void FakeConntrack::add_flow(const net::IpAddress& src, const net::IpAddress& dst) {
  flows.push_back(FakeFlow{src, dst, dst, src});
}

}  // namespace warren::platform::fake
