#include "client/steps.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

namespace warren::client {
namespace {

using platform::RouteSpec;
using platform::RuleSpec;

constexpr std::string_view kHeader = "warren-state 1";

// Undo of something that is already gone is success: the kernel deletes routes and addresses
// with their link, and replay may run twice.
bool already_gone(int e) {
  return e == ENODEV || e == ESRCH || e == ENOENT || e == EADDRNOTAVAIL || e == ENXIO;
}

std::string status_text(const platform::Status& s) {
  return s.ok() ? "" : s.message();
}

std::string opt(const std::optional<std::uint32_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w)
    out.push_back(w);
  return out;
}

bool to_u32(const std::string& s, std::uint32_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool to_opt(const std::string& s, std::optional<std::uint32_t>& v) {
  if (s == "-") {
    v.reset();
    return true;
  }
  std::uint32_t n = 0;
  if (!to_u32(s, n))
    return false;
  v = n;
  return true;
}

class MtuStep final : public Step {
 public:
  MtuStep(std::uint32_t ifindex, std::uint32_t mtu, std::uint32_t old)
      : ifindex_(ifindex), mtu_(mtu), old_(old) {}
  std::string journal_line() const override {
    return "mtu " + std::to_string(ifindex_) + " " + std::to_string(mtu_) + " " +
           std::to_string(old_);
  }
  std::string describe() const override { return "set MTU " + std::to_string(mtu_); }
  std::string apply(System& sys) override { return status_text(sys.net().set_mtu(ifindex_, mtu_)); }
  std::string undo(System& sys) override {
    auto s = sys.net().set_mtu(ifindex_, old_);
    return already_gone(s.error) ? "" : status_text(s);
  }

 private:
  std::uint32_t ifindex_, mtu_, old_;
};

class LinkUpStep final : public Step {
 public:
  explicit LinkUpStep(std::uint32_t ifindex) : ifindex_(ifindex) {}
  std::string journal_line() const override { return "up " + std::to_string(ifindex_); }
  std::string describe() const override { return "set link up"; }
  std::string apply(System& sys) override { return status_text(sys.net().set_up(ifindex_, true)); }
  std::string undo(System& sys) override {
    auto s = sys.net().set_up(ifindex_, false);
    return already_gone(s.error) ? "" : status_text(s);
  }

 private:
  std::uint32_t ifindex_;
};

class AddressStep final : public Step {
 public:
  AddressStep(std::uint32_t ifindex, const net::Prefix& a) : ifindex_(ifindex), address_(a) {}
  std::string journal_line() const override {
    return "addr " + std::to_string(ifindex_) + " " + address_.to_string();
  }
  std::string describe() const override { return "add address " + address_.to_string(); }
  std::string apply(System& sys) override {
    return status_text(sys.net().add_address(ifindex_, address_));
  }
  std::string undo(System& sys) override {
    auto s = sys.net().delete_address(ifindex_, address_);
    return already_gone(s.error) ? "" : status_text(s);
  }

 private:
  std::uint32_t ifindex_;
  net::Prefix address_;
};

class RouteStep final : public Step {
 public:
  explicit RouteStep(const RouteSpec& r) : route_(r) {}
  std::string journal_line() const override {
    return "route " + route_.destination.to_string() + " " + std::to_string(route_.ifindex) + " " +
           std::to_string(route_.table) + " " + opt(route_.metric) + " " +
           (route_.gateway ? route_.gateway->to_string() : std::string("-"));
  }
  std::string describe() const override {
    std::string d = "add route " + route_.destination.to_string();
    if (route_.table != 0 && route_.table != platform::kMainTable)
      d += " table " + std::to_string(route_.table);
    return d;
  }
  std::string apply(System& sys) override { return status_text(sys.net().add_route(route_)); }
  std::string undo(System& sys) override {
    auto s = sys.net().delete_route(route_);
    return already_gone(s.error) ? "" : status_text(s);
  }

 private:
  RouteSpec route_;
};

class RuleStep final : public Step {
 public:
  explicit RuleStep(const RuleSpec& r) : rule_(r) {}
  std::string journal_line() const override {
    return std::string("rule ") + (rule_.family == net::Family::kV4 ? "4" : "6") + " " +
           std::to_string(rule_.table) + " " + opt(rule_.priority) + " " + opt(rule_.fwmark) + " " +
           opt(rule_.suppress_prefixlength) + " " + (rule_.invert ? "1" : "0");
  }
  std::string describe() const override {
    std::string d =
        std::string("add rule (IPv") + (rule_.family == net::Family::kV4 ? "4" : "6") + ")";
    if (rule_.fwmark)
      d += std::string(rule_.invert ? " not" : "") + " fwmark " + std::to_string(*rule_.fwmark);
    d += " lookup " + std::to_string(rule_.table);
    if (rule_.suppress_prefixlength)
      d += " suppress_prefixlength " + std::to_string(*rule_.suppress_prefixlength);
    return d;
  }
  std::string apply(System& sys) override { return status_text(sys.net().add_rule(rule_)); }
  std::string undo(System& sys) override {
    auto s = sys.net().delete_rule(rule_);
    return already_gone(s.error) ? "" : status_text(s);
  }

 private:
  RuleSpec rule_;
};

class SysctlStep final : public Step {
 public:
  SysctlStep(std::string path, std::string value, std::string old)
      : path_(std::move(path)), value_(std::move(value)), old_(std::move(old)) {}
  std::string journal_line() const override {
    return "sysctl " + path_ + " " + value_ + " " + old_;
  }
  std::string describe() const override { return "set " + path_ + " to " + value_; }
  std::string apply(System& sys) override {
    return sys.write_file(path_, value_ + "\n", 0644, true);
  }
  std::string undo(System& sys) override { return sys.write_file(path_, old_ + "\n", 0644, true); }

 private:
  std::string path_, value_, old_;
};

std::string resolv_conf_text(const std::string& ifname, const DnsSettings& dns) {
  std::string t;
  for (const auto& s : dns.servers)
    t += "nameserver " + s.to_string() + "\n";
  if (!dns.search.empty()) {
    t += "search";
    for (const auto& s : dns.search)
      t += " " + s;
    t += "\n";
  }
  (void)ifname;
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

  std::string apply(System& sys) override {
    switch (method_) {
      case DnsMethod::kResolvconf:
        return sys.run({"resolvconf", "-a", "tun." + ifname_, "-m", "0", "-x"},
                       resolv_conf_text(ifname_, dns_));
      case DnsMethod::kResolved: {
        std::vector<std::string> a{"resolvectl", "dns", ifname_};
        for (const auto& s : dns_.servers)
          a.push_back(s.to_string());
        if (auto e = sys.run(a, ""); !e.empty())
          return e;
        // "~." makes the tunnel's servers answer every query, as resolvconf -x does.
        std::vector<std::string> d{"resolvectl", "domain", ifname_, "~."};
        for (const auto& s : dns_.search)
          d.push_back(s);
        if (auto e = sys.run(d, ""); !e.empty()) {
          (void)sys.run({"resolvectl", "revert", ifname_}, "");
          return e;
        }
        return "";
      }
      case DnsMethod::kFile:
        break;
    }
    std::string old;
    int err = 0;
    if (!sys.read_file(resolv_conf_, old, err)) {
      if (err != ENOENT)
        return resolv_conf_ + ": cannot read: " + std::strerror(err);
      old.clear();  // no resolv.conf before: restore an empty one
    }
    if (auto e = sys.write_file(backup_, old, 0600, false); !e.empty())
      return e;
    std::string text = "# written by warren for " + ifname_ + "; `warren down " + ifname_ +
                       "` restores the previous file\n" + resolv_conf_text(ifname_, dns_);
    if (auto e = sys.write_file(resolv_conf_, text, 0644, true); !e.empty()) {
      (void)sys.remove_file(backup_);
      return e;
    }
    return "";
  }

  std::string undo(System& sys) override {
    switch (method_) {
      case DnsMethod::kResolvconf:
        return sys.run({"resolvconf", "-d", "tun." + ifname_, "-f"}, "");
      case DnsMethod::kResolved:
        return sys.run({"resolvectl", "revert", ifname_}, "");
      case DnsMethod::kFile:
        break;
    }
    std::string old;
    int err = 0;
    if (!sys.read_file(backup_, old, err))
      return err == ENOENT ? "" : backup_ + ": cannot read: " + std::strerror(err);
    if (auto e = sys.write_file(resolv_conf_, old, 0644, true); !e.empty())
      return e;
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

std::unique_ptr<Step> make_mtu_step(std::uint32_t ifindex, std::uint32_t mtu, std::uint32_t old) {
  return std::make_unique<MtuStep>(ifindex, mtu, old);
}
std::unique_ptr<Step> make_link_up_step(std::uint32_t ifindex) {
  return std::make_unique<LinkUpStep>(ifindex);
}
std::unique_ptr<Step> make_address_step(std::uint32_t ifindex, const net::Prefix& address) {
  return std::make_unique<AddressStep>(ifindex, address);
}
std::unique_ptr<Step> make_route_step(const RouteSpec& route) {
  return std::make_unique<RouteStep>(route);
}
std::unique_ptr<Step> make_rule_step(const RuleSpec& rule) {
  return std::make_unique<RuleStep>(rule);
}
std::unique_ptr<Step> make_sysctl_step(std::string path, std::string value, std::string old) {
  return std::make_unique<SysctlStep>(std::move(path), std::move(value), std::move(old));
}
std::unique_ptr<Step> make_dns_step(DnsMethod method, const std::string& ifname,
                                    const DnsSettings& dns, const std::string& resolv_conf,
                                    const std::string& backup) {
  return std::make_unique<DnsStep>(method, ifname, dns, resolv_conf, backup);
}

std::unique_ptr<Step> parse_step(std::string_view line) {
  const auto w = words(line);
  if (w.empty())
    return nullptr;
  std::uint32_t a = 0, b = 0, c = 0;
  if (w[0] == "mtu" && w.size() == 4 && to_u32(w[1], a) && to_u32(w[2], b) && to_u32(w[3], c))
    return make_mtu_step(a, b, c);
  if (w[0] == "up" && w.size() == 2 && to_u32(w[1], a))
    return make_link_up_step(a);
  if (w[0] == "addr" && w.size() == 3 && to_u32(w[1], a)) {
    auto p = net::Prefix::parse(w[2]);
    return p ? make_address_step(a, *p) : nullptr;
  }
  if (w[0] == "route" && w.size() == 6) {
    RouteSpec r;
    auto p = net::Prefix::parse(w[1]);
    if (!p || !to_u32(w[2], r.ifindex) || !to_u32(w[3], r.table) || !to_opt(w[4], r.metric))
      return nullptr;
    r.destination = *p;
    if (w[5] != "-") {
      r.gateway = net::IpAddress::parse(w[5]);
      if (!r.gateway)
        return nullptr;
    }
    return make_route_step(r);
  }
  if (w[0] == "rule" && w.size() == 7 && (w[1] == "4" || w[1] == "6")) {
    RuleSpec r;
    r.family = w[1] == "4" ? net::Family::kV4 : net::Family::kV6;
    if (!to_u32(w[2], r.table) || !to_opt(w[3], r.priority) || !to_opt(w[4], r.fwmark) ||
        !to_opt(w[5], r.suppress_prefixlength) || (w[6] != "0" && w[6] != "1"))
      return nullptr;
    r.invert = w[6] == "1";
    return make_rule_step(r);
  }
  if (w[0] == "sysctl" && w.size() == 4)
    return make_sysctl_step(w[1], w[2], w[3]);
  if (w[0] == "dns-resolvconf" && w.size() == 2)
    return make_dns_step(DnsMethod::kResolvconf, w[1], {}, "", "");
  if (w[0] == "dns-resolved" && w.size() == 2)
    return make_dns_step(DnsMethod::kResolved, w[1], {}, "", "");
  if (w[0] == "dns-file" && w.size() == 3)
    return make_dns_step(DnsMethod::kFile, "", {}, w[1], w[2]);
  return nullptr;
}

// ---- ActiveSetup ---------------------------------------------------------------------------

std::string ActiveSetup::open(System& sys, const std::string& journal_path,
                              std::unique_ptr<ActiveSetup>& out) {
  if (!journal_path.empty()) {
    std::string header = std::string(kHeader) + " netns=" + sys.netns_id() + "\n";
    if (auto e = sys.write_file(journal_path, header, 0600, false); !e.empty())
      return e;
  }
  out.reset(new ActiveSetup(sys, journal_path));
  return "";
}

ActiveSetup::~ActiveSetup() {
  (void)rollback();
}

std::string ActiveSetup::apply(std::unique_ptr<Step> step) {
  if (!journal_.empty()) {
    if (auto e = sys_.append_file(journal_, step->journal_line()); !e.empty())
      return step->describe() + ": journal: " + e;
  }
  if (auto e = step->apply(sys_); !e.empty())
    return step->describe() + ": " + e;
  steps_.push_back(std::move(step));
  return "";
}

std::vector<std::string> ActiveSetup::rollback() {
  std::vector<std::string> errors;
  while (!steps_.empty()) {
    auto& s = steps_.back();
    if (auto e = s->undo(sys_); !e.empty())
      errors.push_back("undo " + s->describe() + ": " + e);
    steps_.pop_back();
  }
  if (!journal_.empty()) {
    if (errors.empty()) {
      if (auto e = sys_.remove_file(journal_); !e.empty())
        errors.push_back(e);
    }
    journal_.clear();
  }
  return errors;
}

ReplayResult replay_journal(System& sys, const std::string& path) {
  ReplayResult r;
  std::string text;
  int err = 0;
  if (!sys.read_file(path, text, err)) {
    if (err != ENOENT)
      r.errors.push_back(path + ": cannot read: " + std::strerror(err));
    return r;
  }
  r.found = true;
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  const std::string want = std::string(kHeader) + " netns=" + sys.netns_id();
  if (lines.empty() || lines[0] != want) {
    r.errors.push_back(path + ": written in another network namespace or by another version (" +
                       (lines.empty() ? std::string("empty") : lines[0]) +
                       "); run `warren down` there, or delete the file");
    return r;
  }
  for (std::size_t i = lines.size(); i-- > 1;) {
    if (lines[i].empty())
      continue;  // a torn last write leaves at most a partial line; see below
    auto step = parse_step(lines[i]);
    if (!step) {
      // Only the last line can be torn by a crash mid-write, and then its step never ran.
      if (i == lines.size() - 1)
        continue;
      r.errors.push_back(path + ":" + std::to_string(i + 1) + ": unreadable step '" + lines[i] +
                         "'");
      continue;
    }
    if (auto e = step->undo(sys); !e.empty())
      r.errors.push_back("undo " + step->describe() + ": " + e);
    else
      ++r.undone;
  }
  if (r.errors.empty()) {
    if (auto e = sys.remove_file(path); !e.empty())
      r.errors.push_back(e);
  }
  return r;
}

}  // namespace warren::client
