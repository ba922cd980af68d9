// Conntrack entries through libnetfilter_conntrack (ctnetlink), see platform/conntrack.h.
//
//   forget(A...) ─► per family of A: NFCT_Q_DUMP ─► callback: names one of A? ─► copy kept
//                ─► after the dump: NFCT_Q_DESTROY of each copy (ENOENT: ended by itself)
//
// The deletions wait for the end of the dump because a netlink socket cannot take a request
// in the middle of answering its own dump. The kernel can filter a dump only by the original
// tuple on some versions and cannot filter a flush by address at all, so we match here: all
// four addresses of both tuples, every zone (a copy keeps its zone, so its deletion finds it).
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <vector>

#include "platform/conntrack.h"

namespace warren::platform {
namespace {

struct HandleDeleter {
  void operator()(nfct_handle* h) const { nfct_close(h); }
};
using HandlePtr = std::unique_ptr<nfct_handle, HandleDeleter>;

struct EntryDeleter {
  void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};
using EntryPtr = std::unique_ptr<nf_conntrack, EntryDeleter>;

// The addresses of one family, as the bytes conntrack stores (network byte order).
struct Wanted {
  bool v4 = true;
  std::set<std::array<std::uint8_t, 16>> bytes;  // IPv4 in the first 4, the rest zero
};

std::array<std::uint8_t, 16> key_of(const void* p, std::size_t n) {
  std::array<std::uint8_t, 16> k{};
  std::memcpy(k.data(), p, n);
  return k;
}

bool names(const nf_conntrack* ct, const Wanted& w) {
  static constexpr nf_conntrack_attr kV4[] = {ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
                                              ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV4_DST};
  static constexpr nf_conntrack_attr kV6[] = {ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST,
                                              ATTR_REPL_IPV6_SRC, ATTR_REPL_IPV6_DST};
  for (const nf_conntrack_attr attr : w.v4 ? std::span(kV4) : std::span(kV6)) {
    if (nfct_attr_is_set(ct, attr) > 0 &&
        w.bytes.count(key_of(nfct_get_attr(ct, attr), w.v4 ? 4 : 16)) != 0)
      return true;
  }
  return false;
}

struct Dump {
  const Wanted* wanted;
  std::vector<EntryPtr> matches;
  bool out_of_memory = false;
};

int collect(nf_conntrack_msg_type, nf_conntrack* ct, void* data) {
  auto* d = static_cast<Dump*>(data);
  if (names(ct, *d->wanted)) {
    EntryPtr copy(nfct_clone(ct));
    if (!copy) {
      d->out_of_memory = true;
      return NFCT_CB_STOP;
    }
    d->matches.push_back(std::move(copy));
  }
  return NFCT_CB_CONTINUE;
}

class LinuxConntrack final : public Conntrack {
 public:
  explicit LinuxConntrack(HandlePtr h) : h_(std::move(h)) {}

  warren::Result<std::size_t> forget(std::span<const net::IpAddress> addresses) override {
    std::lock_guard lock(mu_);
    Wanted v4{true, {}}, v6{false, {}};
    for (const auto& address : addresses) {
      const net::IpAddress a = address.unmapped();
      (a.is_v4() ? v4 : v6).bytes.insert(key_of(a.data(), a.size()));
    }
    std::size_t deleted = 0;
    for (const Wanted* w : {&v4, &v6}) {
      if (w->bytes.empty())
        continue;
      auto n = forget_family(*w);
      if (!n)
        return n;
      deleted += *n;
    }
    return deleted;
  }

 private:
  warren::Result<std::size_t> forget_family(const Wanted& w) {
    Dump dump{&w, {}, false};
    nfct_callback_unregister(h_.get());
    if (nfct_callback_register(h_.get(), NFCT_T_ALL, &collect, &dump) < 0)
      return warren::Error::from_errno(errno, "nfct_callback_register");
    std::uint32_t family = w.v4 ? AF_INET : AF_INET6;
    const int dumped = nfct_query(h_.get(), NFCT_Q_DUMP, &family);
    const int dump_errno = errno;
    nfct_callback_unregister(h_.get());
    if (dump.out_of_memory)
      return warren::Error::from_errno(ENOMEM, "nfct_clone");
    if (dumped < 0)
      return warren::Error::from_errno(dump_errno, "nfct_query(NFCT_Q_DUMP)");
    std::size_t deleted = 0;
    for (const EntryPtr& ct : dump.matches) {
      if (nfct_query(h_.get(), NFCT_Q_DESTROY, ct.get()) == 0)
        ++deleted;
      else if (errno != ENOENT)  // ENOENT: it timed out or ended since the dump
        return warren::Error::from_errno(errno, "nfct_query(NFCT_Q_DESTROY)");
    }
    return deleted;
  }

  std::mutex mu_;
  HandlePtr h_;
};

}  // namespace

warren::Result<std::unique_ptr<Conntrack>> open_conntrack() {
  HandlePtr h(nfct_open(CONNTRACK, 0));
  if (!h)
    return warren::Error::from_errno(errno, "nfct_open");
  // The library opens its socket without SOCK_CLOEXEC; the server starts helpers (iptables).
  if (::fcntl(nfct_fd(h.get()), F_SETFD, FD_CLOEXEC) < 0)
    return warren::Error::from_errno(errno, "fcntl(FD_CLOEXEC)");
  return std::unique_ptr<Conntrack>(std::make_unique<LinuxConntrack>(std::move(h)));
}

}  // namespace warren::platform
