#include "client/steps.h"

#include <cerrno>
#include <sstream>

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
        // "~." makes the tunnel's servers answer every query, as resolvconf -x does.
        std::vector<std::string> d{"resolvectl", "domain", ifname_, "~."};
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

std::unique_ptr<Step> parse_step(std::string_view line) {
  const auto w = host::journal_words(line);
  if (w.empty())
    return nullptr;
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

ReplayResult replay_journal(System& sys, const std::string& path) {
  return host::replay_journal(sys, path, parse_step);
}

}  // namespace warren::client
