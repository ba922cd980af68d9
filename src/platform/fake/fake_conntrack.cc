#include "platform/fake/fake_conntrack.h"

#include <algorithm>

namespace warren::platform::fake {

warren::Result<std::size_t> FakeConntrack::forget_address(const net::IpAddress& address) {
  forgotten.push_back(address);
  if (fail_next_) {
    const int code = *fail_next_;
    fail_next_.reset();
    return warren::Error::from_errno(code, "nfct_query(NFCT_Q_DUMP)");
  }
  const net::IpAddress a = address.unmapped();
  return static_cast<std::size_t>(std::erase_if(flows, [&](const FakeFlow& f) {
    return f.orig_src.unmapped() == a || f.orig_dst.unmapped() == a ||
           f.reply_src.unmapped() == a || f.reply_dst.unmapped() == a;
  }));
}

void FakeConntrack::add_flow(const net::IpAddress& src, const net::IpAddress& dst) {
  flows.push_back(FakeFlow{src, dst, dst, src});
}

}  // namespace warren::platform::fake
