#include "client/steps.h"

#include <cerrno>
#include <memory>
#include <optional>
#include <sstream>

#include "client/plan.h"

namespace warren::client {
namespace {


std::string resolv_conf_text(const DnsSettings& dns) {
  std::string t;
  for (const auto& s : dns.servers)
    t += "nameserver " + s.to_string() + "\n";
  if (!dns.search.empty()) {
    t += "search";
    for (const auto& s : dns.search)
      t += " " + s;
    t += "\n";
  }
  return t;
}

class DnsStep final : public Step {
 public:
  DnsStep(DnsMethod m, std::string ifname, DnsSettings dns, std::string resolv_conf,
          std::string backup)
      : method_(m),
        ifname_(std::move(ifname)),
        dns_(std::move(dns)),
        resolv_conf_(std::move(resolv_conf)),
        backup_(std::move(backup)) {}

  std::string journal_line() const override {
    switch (method_) {
      case DnsMethod::kResolvconf:
        return "dns-resolvconf " + ifname_;
      case DnsMethod::kResolved:
        return "dns-resolved " + ifname_;
      case DnsMethod::kFile:
        break;
    }
    return "dns-file " + resolv_conf_ + " " + backup_;
  }
  std::string describe() const override {
    return std::string("set DNS (") + dns_method_name(method_) + ")";
  }
  // resolv.conf is on disk; resolvconf's and resolved's records live under /run and in memory.
  bool survives_reboot() const override { return method_ == DnsMethod::kFile; }

  Status apply(System& sys) override {
    switch (method_) {
      case DnsMethod::kResolvconf:
        return host::run_checked(sys, {"resolvconf", "-a", "tun." + ifname_, "-m", "0", "-x"},
                                 resolv_conf_text(dns_));
      case DnsMethod::kResolved: {
        std::vector<std::string> a{"resolvectl", "dns", ifname_};
        for (const auto& s : dns_.servers)
          a.push_back(s.to_string());
        if (auto s = host::run_checked(sys, a); !s)
          return s;
        // "~." makes the tunnel's servers answer every query, as resolvconf -x does; a mesh
        // node routes only its domain there ("~warren").
        std::vector<std::string> d{"resolvectl", "domain", ifname_};
        if (dns_.routing.empty())
          d.push_back("~.");
        for (const auto& r : dns_.routing)
          d.push_back("~" + r);
        for (const auto& s : dns_.search)
          d.push_back(s);
        if (auto s = host::run_checked(sys, d); !s) {
          (void)host::run_checked(sys, {"resolvectl", "revert", ifname_});
          return s;
        }
        return ok();
      }
      case DnsMethod::kFile:
        break;
    }
    std::string old;
    if (auto r = sys.read_file(resolv_conf_); r) {
      old = *r;
    } else if (r.error().code == ELOOP) {
      // A link to /run/systemd/resolve/... or /run/resolvconf/...: that program owns the file.
      return r.error().with_context("the file method rewrites resolv.conf itself, never "
                                    "through a link (use WARREN_DNS_BACKEND=resolvconf or "
                                    "resolved, or replace the link by a file)");
    } else if (r.error().code != ENOENT) {
      return r.error();
    }  // else: no resolv.conf before, so an empty one is restored
    if (auto s = sys.write_file(backup_, old, 0600, false); !s)
      return s;
    std::string text = "# written by warren for " + ifname_ + "; `warren down " + ifname_ +
                       "` restores the previous file\n" + resolv_conf_text(dns_);
    if (auto s = sys.write_file(resolv_conf_, text, 0644, true); !s) {
      (void)sys.remove_file(backup_);
      return s;
    }
    return ok();
  }

  Status undo(System& sys) override {
    switch (method_) {
      case DnsMethod::kResolvconf:
        return host::run_checked(sys, {"resolvconf", "-d", "tun." + ifname_, "-f"});
      case DnsMethod::kResolved:
        return host::run_checked(sys, {"resolvectl", "revert", ifname_});
      case DnsMethod::kFile:
        break;
    }
    auto old = sys.read_file(backup_);
    if (!old)
      return old.error().code == ENOENT ? ok() : Status(old.error());
    if (auto s = sys.write_file(resolv_conf_, *old, 0644, true); !s)
      return s;
    return sys.remove_file(backup_);
  }

 private:
  DnsMethod method_;
  std::string ifname_;
  DnsSettings dns_;
  std::string resolv_conf_, backup_;
};

class InterfaceStep final : public Step {
 public:
  InterfaceStep(std::string ifname, std::uint32_t ifindex)
      : ifname_(std::move(ifname)), ifindex_(ifindex) {}
  std::string journal_line() const override {
    return "interface " + ifname_ + " " + std::to_string(ifindex_);
  }
  std::string describe() const override { return "record interface " + ifname_; }
  Status apply(System&) override { return ok(); }
  Status undo(System&) override { return ok(); }

 private:
  std::string ifname_;
  std::uint32_t ifindex_;
};

// A replayed step on the journal's own link. After the daemon died its TUN went, and the index
// may since have been given to another link: then there is nothing of ours left to undo there.
class OwnLinkStep final : public Step {
 public:
  OwnLinkStep(std::unique_ptr<Step> step, std::string ifname, std::uint32_t ifindex)
      : step_(std::move(step)), ifname_(std::move(ifname)), ifindex_(ifindex) {}
  std::string journal_line() const override { return step_->journal_line(); }
  std::string describe() const override { return step_->describe(); }
  Status apply(System& sys) override { return step_->apply(sys); }
  bool survives_reboot() const override { return step_->survives_reboot(); }
  Status undo(System& sys) override {
    auto link = sys.net().link_by_index(ifindex_);
    if (link.ok() && link->name != ifname_)
      return ok();
    return step_->undo(sys);
  }

 private:
  std::unique_ptr<Step> step_;
  std::string ifname_;
  std::uint32_t ifindex_;
};

class EnsureRouteStep final : public Step {
 public:
  explicit EnsureRouteStep(const platform::RouteSpec& r) : route_(r), inner_(host::make_route_step(r)) {}
  std::string journal_line() const override { return inner_->journal_line(); }
  std::string describe() const override { return inner_->describe(); }
  Status apply(System& sys) override {
    Status s = inner_->apply(sys);
    if (!s.ok() && s.code() == EEXIST)
      return ok();  // the identical route is there already: what we wanted
    return s;
  }
  Status undo(System& sys) override { return inner_->undo(sys); }

 private:
  platform::RouteSpec route_;
  std::unique_ptr<Step> inner_;
};

class ServiceAddressStep final : public Step {
 public:
  ServiceAddressStep(std::uint32_t ifindex, const net::Prefix& a)
      : ifindex_(ifindex), address_(a), inner_(host::make_address_step(ifindex, a)) {}
  std::string journal_line() const override { return inner_->journal_line(); }
  std::string describe() const override { return inner_->describe(); }
  Status apply(System& sys) override { return sys.net().add_service_address(ifindex_, address_); }
  Status undo(System& sys) override { return inner_->undo(sys); }

 private:
  std::uint32_t ifindex_;
  net::Prefix address_;
  std::unique_ptr<Step> inner_;
};

bool number(const std::string& s) {
  return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

Error refuse(const std::string& why) {
  return Error(EPERM, why);
}

}  // namespace

const char* dns_method_name(DnsMethod m) {
  switch (m) {
    case DnsMethod::kResolvconf:
      return "resolvconf";
    case DnsMethod::kResolved:
      return "systemd-resolved";
    case DnsMethod::kFile:
      return "resolv.conf";
  }
  return "?";
}

std::unique_ptr<Step> make_dns_step(DnsMethod method, const std::string& ifname,
                                    const DnsSettings& dns, const std::string& resolv_conf,
                                    const std::string& backup) {
  return std::make_unique<DnsStep>(method, ifname, dns, resolv_conf, backup);
}

std::unique_ptr<Step> make_service_address_step(std::uint32_t ifindex, const net::Prefix& address) {
  return std::make_unique<ServiceAddressStep>(ifindex, address);
}

std::unique_ptr<Step> make_interface_step(const std::string& ifname, std::uint32_t ifindex) {
  return std::make_unique<InterfaceStep>(ifname, ifindex);
}

std::unique_ptr<Step> make_ensure_route_step(const platform::RouteSpec& route) {
  return std::make_unique<EnsureRouteStep>(route);
}

std::unique_ptr<Step> parse_step(std::string_view line) {
  const auto w = host::journal_words(line);
  if (w.empty())
    return nullptr;
  if (w[0] == "interface" && w.size() == 3 && number(w[2]))
    return make_interface_step(w[1], static_cast<std::uint32_t>(std::stoul(w[2])));
  if (w[0] == "dns-resolvconf" && w.size() == 2)
    return make_dns_step(DnsMethod::kResolvconf, w[1], {}, "", "");
  if (w[0] == "dns-resolved" && w.size() == 2)
    return make_dns_step(DnsMethod::kResolved, w[1], {}, "", "");
  if (w[0] == "dns-file" && w.size() == 3)
    return make_dns_step(DnsMethod::kFile, "", {}, w[1], w[2]);
  if (w[0] == "firewall")
    return nullptr;
  return host::parse_host_step(line);
}

host::StepChecker journal_checker(const JournalScope& scope) {
  // The link index of the interface line, once it has been read.
  auto own = std::make_shared<std::optional<std::uint32_t>>();
  return [scope, own](std::string_view line) -> Result<std::unique_ptr<Step>> {
    auto step = parse_step(line);
    if (!step)
      return Error(EINVAL, "not a step warren up takes");
    const auto w = host::journal_words(line);
    const std::string& kind = w[0];
    const std::string& name = scope.interface;
    // Is the link index `word` IFNAME's, by the interface line?
    auto on_own_link = [&](const std::string& word) -> Status {
      if (!*own)
        return refuse("names link " + word + " before the journal's interface line");
      if (word != std::to_string(**own))
        return refuse("names link " + word + ", but " + name + " was link " +
                      std::to_string(**own));
      return ok();
    };
    auto wrap = [&](std::unique_ptr<Step> s) -> std::unique_ptr<Step> {
      return std::make_unique<OwnLinkStep>(std::move(s), name, **own);
    };
    if (kind == "interface") {
      if (w[1] != name)
        return refuse("names interface " + w[1] + ", but this is the journal of " + name);
      if (*own)
        return refuse("a second interface line");
      *own = static_cast<std::uint32_t>(std::stoul(w[2]));
      return step;
    }
    if (kind == "mtu" || kind == "up" || kind == "addr") {
      if (auto s = on_own_link(w[1]); !s)
        return s.error();
      return wrap(std::move(step));
    }
    if (kind == "route") {
      if (on_own_link(w[2]).ok())
        return wrap(std::move(step));
      // An endpoint host route, on whichever link led to the server (plan.h).
      auto dest = net::Prefix::parse(w[1]);
      const bool host_route = dest && dest->length == (dest->address.is_v4() ? 32 : 128);
      if (host_route && w[3] == "0" && w[4] == std::to_string(kEndpointRouteMetric))
        return step;
      return refuse("a route on link " + w[2] + " that is neither " + name +
                    "'s nor an endpoint host route (a /32 or /128 with metric " +
                    std::to_string(kEndpointRouteMetric) + ")");
    }
    if (kind == "rule") {
      // rule FAMILY TABLE PRIORITY FWMARK SUPPRESS INVERT: the two rules of a full tunnel.
      const bool not_ours = w[2] == w[4] && w[3] == "-" && w[5] == "-" && w[6] == "1";
      const bool main_specific = w[2] == std::to_string(platform::kMainTable) && w[3] == "-" &&
                                 w[4] == "-" && w[5] == "0" && w[6] == "0";
      if (not_ours || main_specific)
        return step;
      return refuse("a rule warren up never adds (only 'not fwmark T lookup T' and 'lookup main "
                    "suppress_prefixlength 0')");
    }
    if (kind == "sysctl") {
      const std::string allowed = scope.sysctl_dir + "/net/ipv4/conf/all/src_valid_mark";
      if (w[1] == allowed && number(w[2]) && number(w[3]))
        return step;
      return refuse("names " + w[1] + "; the only sysctl warren up sets is " + allowed);
    }
    if (kind == "dns-file") {
      if (w[1] != scope.resolv_conf)
        return refuse("names " + w[1] + "; the resolv.conf in use is " + scope.resolv_conf);
      if (w[2] != scope.backup)
        return refuse("names " + w[2] + "; " + name + "'s resolv.conf backup is " + scope.backup);
      return step;
    }
    if (kind == "dns-resolvconf" || kind == "dns-resolved") {
      if (w[1] != name)
        return refuse("names interface " + w[1] + ", but this is the journal of " + name);
      return step;
    }
    return Error(EINVAL, "not a step warren up takes");
  };
}

ReplayResult replay_journal(System& sys, const std::string& path, const JournalScope& scope) {
  return host::replay_journal_checked(sys, path, journal_checker(scope));
}

}  // namespace warren::client
