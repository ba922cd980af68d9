// rtnetlink through libmnl. Requests are synchronous: each carries NLM_F_ACK and a fresh
// sequence number, and we read until the kernel's acknowledgement (or error) for it, handing
// any RTM_NEWLINK reply to a parser on the way.
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "platform/netlink.h"

namespace warren::platform {
namespace {

constexpr std::size_t kBufferSize = 32 * 1024;

struct MnlDeleter {
  void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};
using MnlSocketPtr = std::unique_ptr<mnl_socket, MnlDeleter>;

Result<MnlSocketPtr> open_mnl(unsigned groups) {
  MnlSocketPtr s(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
  if (!s)
    return Error::from_errno(errno, "mnl_socket_open");
  if (mnl_socket_bind(s.get(), groups, MNL_SOCKET_AUTOPID) < 0) {
    return Error::from_errno(errno, "mnl_socket_bind");
  }
  return s;
}

int parse_link_attr(const nlattr* attr, void* data) {
  auto* info = static_cast<LinkInfo*>(data);
  switch (mnl_attr_get_type(attr)) {
    case IFLA_IFNAME:
      if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
        info->name = mnl_attr_get_str(attr);
      break;
    case IFLA_MTU:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
        info->mtu = mnl_attr_get_u32(attr);
      break;
    default:
      break;
  }
  return MNL_CB_OK;
}

LinkInfo parse_link(const nlmsghdr* nlh) {
  LinkInfo info;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  info.ifindex = static_cast<std::uint32_t>(ifi->ifi_index);
  info.up = ifi->ifi_flags & IFF_UP;
  info.running = ifi->ifi_flags & IFF_RUNNING;
  mnl_attr_parse(nlh, sizeof(*ifi), parse_link_attr, &info);
  return info;
}

void put_address(nlmsghdr* nlh, std::uint16_t type, const net::IpAddress& a) {
  mnl_attr_put(nlh, type, a.size(), a.data());
}

class MnlNetConfig final : public NetConfig {
 public:
  explicit MnlNetConfig(MnlSocketPtr s)
      : sock_(std::move(s)), portid_(mnl_socket_get_portid(sock_.get())), buf_(kBufferSize) {}

  Result<LinkInfo> link_by_name(std::string_view name) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_GETLINK, 0);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    std::string n(name);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
    return get_link(nlh);
  }

  Result<LinkInfo> link_by_index(std::uint32_t ifindex) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_GETLINK, 0);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = static_cast<int>(ifindex);
    return get_link(nlh);
  }

  Status set_mtu(std::uint32_t ifindex, std::uint32_t mtu) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_NEWLINK, 0);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = static_cast<int>(ifindex);
    mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
    return transact(nlh, nullptr, "netlink(set mtu)");
  }

  Status set_up(std::uint32_t ifindex, bool up) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_NEWLINK, 0);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = static_cast<int>(ifindex);
    ifi->ifi_flags = up ? IFF_UP : 0;
    ifi->ifi_change = IFF_UP;
    return transact(nlh, nullptr, "netlink(set link up/down)");
  }

  Status delete_link(std::uint32_t ifindex) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_DELLINK, 0);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = static_cast<int>(ifindex);
    return transact(nlh, nullptr, "netlink(delete link)");
  }

  Status add_address(std::uint32_t ifindex, const net::Prefix& address) override {
    return address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, address,
                           "netlink(add address)");
  }
  Status delete_address(std::uint32_t ifindex, const net::Prefix& address) override {
    return address_request(RTM_DELADDR, 0, ifindex, address, "netlink(delete address)");
  }
  Status add_service_address(std::uint32_t ifindex, const net::Prefix& address) override {
    return address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, address,
                           "netlink(add address)", /*deprecated=*/true);
  }

  Status add_route(const RouteSpec& route) override {
    return route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, "netlink(add route)");
  }
  Status delete_route(const RouteSpec& route) override {
    return route_request(RTM_DELROUTE, 0, route, "netlink(delete route)");
  }

 private:
  nlmsghdr* start(std::uint16_t type, std::uint16_t extra_flags) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf_.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
    nlh->nlmsg_seq = ++seq_;
    return nlh;
  }

  Status address_request(std::uint16_t type, std::uint16_t flags, std::uint32_t ifindex,
                         const net::Prefix& address, const char* op, bool deprecated = false) {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(type, flags);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = address.address.is_v4() ? AF_INET : AF_INET6;
    ifa->ifa_prefixlen = address.length;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = ifindex;
    put_address(nlh, IFA_LOCAL, address.address);
    put_address(nlh, IFA_ADDRESS, address.address);
    if (deprecated) {
      ifa_cacheinfo ci{};
      ci.ifa_prefered = 0;
      ci.ifa_valid = 0xFFFFFFFFu;  // "forever" (the kernel's INFINITY_LIFE_TIME)
      mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
    }
    return transact(nlh, nullptr, op);
  }

  Status route_request(std::uint16_t type, std::uint16_t flags, const RouteSpec& route,
                       const char* op) {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(type, flags);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    const net::Prefix dst = route.destination.canonical();
    rtm->rtm_family = dst.address.is_v4() ? AF_INET : AF_INET6;
    rtm->rtm_dst_len = dst.length;
    const std::uint32_t table = route.table == 0 ? RT_TABLE_MAIN : route.table;
    rtm->rtm_table =
        table < 256 ? static_cast<std::uint8_t>(table) : static_cast<std::uint8_t>(RT_TABLE_UNSPEC);
    if (type == RTM_NEWROUTE) {
      rtm->rtm_protocol = RTPROT_BOOT;
      rtm->rtm_scope = route.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
      rtm->rtm_type = RTN_UNICAST;
    } else {
      // Deletion matches on what is given; NOWHERE/0 act as wildcards.
      rtm->rtm_scope = RT_SCOPE_NOWHERE;
    }
    if (dst.length > 0)
      put_address(nlh, RTA_DST, dst.address);
    mnl_attr_put_u32(nlh, RTA_TABLE, table);
    if (route.ifindex != 0)
      mnl_attr_put_u32(nlh, RTA_OIF, route.ifindex);
    if (route.metric)
      mnl_attr_put_u32(nlh, RTA_PRIORITY, *route.metric);
    if (route.gateway)
      put_address(nlh, RTA_GATEWAY, *route.gateway);
    return transact(nlh, nullptr, op);
  }

  Status add_rule(const RuleSpec& rule) override {
    return rule_request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, rule, "netlink(add rule)");
  }
  Status delete_rule(const RuleSpec& rule) override {
    return rule_request(RTM_DELRULE, 0, rule, "netlink(delete rule)");
  }

  Result<RouteSpec> route_get(const net::IpAddress& destination) override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_GETROUTE, 0);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = destination.is_v4() ? AF_INET : AF_INET6;
    rtm->rtm_dst_len = static_cast<unsigned char>(destination.size() * 8);
    put_address(nlh, RTA_DST, destination);
    RouteSpec out;
    out.destination = net::Prefix{destination, rtm->rtm_dst_len};
    bool found = false;
    auto on_route = [&](const nlmsghdr* reply) {
      if (reply->nlmsg_type != RTM_NEWROUTE)
        return;
      const auto* m = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(reply));
      found = true;
      out.table = m->rtm_table;
      struct Ctx {
        RouteSpec* r;
      } ctx{&out};
      mnl_attr_parse(
          reply, sizeof(*m),
          [](const nlattr* a, void* data) {
            auto* c = static_cast<Ctx*>(data);
            switch (mnl_attr_get_type(a)) {
              case RTA_OIF:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                  c->r->ifindex = mnl_attr_get_u32(a);
                break;
              case RTA_TABLE:
                if (mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
                  c->r->table = mnl_attr_get_u32(a);
                break;
              case RTA_GATEWAY:
                c->r->gateway = net::IpAddress::from_bytes(
                    static_cast<const std::uint8_t*>(mnl_attr_get_payload(a)),
                    mnl_attr_get_payload_len(a));
                break;
              default:
                break;
            }
            return MNL_CB_OK;
          },
          &ctx);
    };
    Status s = transact(nlh, on_route, "netlink(get route)");
    if (!s.ok())
      return s.error();
    if (!found)
      return Error::from_errno(ENETUNREACH, "netlink(get route)");
    return out;
  }

  Result<std::vector<net::Prefix>> list_addresses(std::uint32_t ifindex) override {
    auto all = list_link_addresses();
    if (!all.ok())
      return all.error();
    std::vector<net::Prefix> out;
    for (const auto& a : *all)
      if (ifindex == 0 || a.ifindex == ifindex)
        out.push_back(a.address);
    return out;
  }

  Result<std::vector<LinkAddress>> list_link_addresses() override {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(RTM_GETADDR, NLM_F_DUMP);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    std::vector<LinkAddress> out;
    auto on_addr = [&](const nlmsghdr* reply) {
      if (reply->nlmsg_type != RTM_NEWADDR)
        return;
      const auto* m = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(reply));
      struct Found {
        const nlattr* local = nullptr;
        const nlattr* address = nullptr;
      } found;
      mnl_attr_parse(
          reply, sizeof(*m),
          [](const nlattr* a, void* data) {
            auto* f = static_cast<Found*>(data);
            if (mnl_attr_get_type(a) == IFA_LOCAL)
              f->local = a;
            else if (mnl_attr_get_type(a) == IFA_ADDRESS)
              f->address = a;
            return MNL_CB_OK;
          },
          &found);
      const nlattr* a = found.local ? found.local : found.address;
      if (!a)
        return;
      auto ip = net::IpAddress::from_bytes(
          static_cast<const std::uint8_t*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a));
      if (ip)
        out.push_back(LinkAddress{m->ifa_index, net::Prefix{*ip, m->ifa_prefixlen}});
    };
    Status s = transact(nlh, on_addr, "netlink(list addresses)");
    if (!s.ok())
      return s.error();
    return out;
  }

  Status rule_request(std::uint16_t type, std::uint16_t flags, const RuleSpec& rule,
                      const char* op) {
    std::lock_guard lock(mutex_);
    nlmsghdr* nlh = start(type, flags);
    // struct fib_rule_hdr is the rtmsg-shaped header of FIB rule messages.
    auto* frh = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
    frh->family = rule.family == net::Family::kV4 ? AF_INET : AF_INET6;
    frh->action = FR_ACT_TO_TBL;
    frh->table = rule.table < 256 ? static_cast<std::uint8_t>(rule.table)
                                  : static_cast<std::uint8_t>(RT_TABLE_UNSPEC);
    if (rule.invert)
      frh->flags |= FIB_RULE_INVERT;
    mnl_attr_put_u32(nlh, FRA_TABLE, rule.table);
    if (rule.priority)
      mnl_attr_put_u32(nlh, FRA_PRIORITY, *rule.priority);
    if (rule.fwmark) {
      mnl_attr_put_u32(nlh, FRA_FWMARK, *rule.fwmark);
      mnl_attr_put_u32(nlh, FRA_FWMASK, rule.fwmask.value_or(0xffffffffu));
    }
    if (rule.suppress_prefixlength)
      mnl_attr_put_u32(nlh, FRA_SUPPRESS_PREFIXLEN, *rule.suppress_prefixlength);
    return transact(nlh, nullptr, op);
  }

  Result<LinkInfo> get_link(nlmsghdr* nlh) {
    LinkInfo info;
    bool found = false;
    auto on_link = [&](const nlmsghdr* reply) {
      if (reply->nlmsg_type == RTM_NEWLINK) {
        info = parse_link(reply);
        found = true;
      }
    };
    Status s = transact(nlh, on_link, "netlink(get link)");
    if (!s.ok())
      return s.error();
    if (!found)
      return Error::from_errno(ENODEV, "netlink(get link)");
    return info;
  }

  using ReplyFn = std::function<void(const nlmsghdr*)>;

  // Sends `nlh` and reads replies until its acknowledgement. Caller holds mutex_. Messages are
  // walked by hand rather than with mnl_cb_run so that a stale reply (another sequence number)
  // is skipped, and a kernel error code is never confused with libmnl's own EPROTO/ESRCH.
  Status transact(nlmsghdr* nlh, const ReplyFn& on_reply, const char* op) {
    const unsigned seq = nlh->nlmsg_seq;
    if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0)
      return Error::from_errno(errno, op);
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(sock_.get(), buf_.data(), buf_.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return Error::from_errno(errno, op);
      }
      int len = static_cast<int>(n);
      for (auto* m = reinterpret_cast<const nlmsghdr*>(buf_.data()); mnl_nlmsg_ok(m, len);
           m = mnl_nlmsg_next(m, &len)) {
        if (m->nlmsg_seq != seq)
          continue;
        if (m->nlmsg_type == NLMSG_ERROR) {
          if (m->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr)))
            return Error::from_errno(EBADMSG, op);
          const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
          if (err->error == 0)
            return {};
          return Error::from_errno(-err->error, op);
        }
        if (m->nlmsg_type == NLMSG_DONE)
          return {};
        if (on_reply)
          on_reply(m);
      }
    }
  }

  std::mutex mutex_;
  MnlSocketPtr sock_;
  unsigned portid_;
  unsigned seq_ = 0;
  std::vector<char> buf_;
};

class MnlLinkMonitor final : public LinkMonitor {
 public:
  MnlLinkMonitor(MnlSocketPtr s, std::uint32_t ifindex)
      : sock_(std::move(s)), ifindex_(ifindex), buf_(kBufferSize) {}

  int poll_fd() const override { return mnl_socket_get_fd(sock_.get()); }

  Result<std::size_t> poll(const std::function<void(const LinkEvent&)>& on_event) override {
    std::size_t delivered = 0;
    for (;;) {
      ssize_t n = ::recv(poll_fd(), buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          break;
        if (errno == ENOBUFS) {
          delivered += resync(on_event);
          continue;
        }
        return Error::from_errno(errno, "recv(netlink)");
      }
      State st{this, &on_event, 0};
      mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), 0, 0, event_cb, &st);
      delivered += st.delivered;
    }
    return delivered;
  }

 private:
  struct State {
    MnlLinkMonitor* self;
    const std::function<void(const LinkEvent&)>* on_event;
    std::size_t delivered;
  };

  static int event_cb(const nlmsghdr* nlh, void* data) {
    auto* st = static_cast<State*>(data);
    switch (nlh->nlmsg_type) {
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
      case RTM_NEWADDR:
      case RTM_DELADDR: {
        LinkEvent routes;
        routes.kind = LinkEvent::Kind::kRoutesChanged;
        (*st->on_event)(routes);
        ++st->delivered;
        return MNL_CB_OK;
      }
      default:
        break;
    }
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
      return MNL_CB_OK;
    LinkEvent ev;
    ev.link = parse_link(nlh);
    if (st->self->ifindex_ != 0 && ev.link.ifindex != st->self->ifindex_)
      return MNL_CB_OK;
    ev.kind =
        nlh->nlmsg_type == RTM_DELLINK ? LinkEvent::Kind::kDeleted : LinkEvent::Kind::kChanged;
    (*st->on_event)(ev);
    ++st->delivered;
    return MNL_CB_OK;
  }

  // Notifications were lost; report the watched link's current state instead.
  std::size_t resync(const std::function<void(const LinkEvent&)>& on_event) {
    if (ifindex_ == 0)
      return 0;
    auto cfg = open_net_config();
    if (!cfg.ok())
      return 0;
    auto link = (*cfg)->link_by_index(ifindex_);
    LinkEvent ev;
    if (link.ok()) {
      ev.link = *link;
    } else if (link.code() == ENODEV) {
      ev.kind = LinkEvent::Kind::kDeleted;
      ev.link.ifindex = ifindex_;
    } else {
      return 0;
    }
    on_event(ev);
    return 1;
  }

  MnlSocketPtr sock_;
  std::uint32_t ifindex_;
  std::vector<char> buf_;
};

}  // namespace

Result<std::unique_ptr<NetConfig>> open_net_config() {
  using R = Result<std::unique_ptr<NetConfig>>;
  auto s = open_mnl(0);
  if (!s.ok())
    return s.error();
  return R(std::make_unique<MnlNetConfig>(std::move(*s)));
}

Result<std::unique_ptr<LinkMonitor>> open_link_monitor(std::uint32_t ifindex) {
  using R = Result<std::unique_ptr<LinkMonitor>>;
  auto s = open_mnl(RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_IFADDR |
                    RTMGRP_IPV6_IFADDR);
  if (!s.ok())
    return s.error();
  int fd = mnl_socket_get_fd(s->get());
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return Error::from_errno(errno, "fcntl");
  return R(std::make_unique<MnlLinkMonitor>(std::move(*s), ifindex));
}

}  // namespace warren::platform
