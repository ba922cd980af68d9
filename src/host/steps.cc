#include "host/steps.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <sstream>

namespace warren::host {
namespace {

using platform::RouteSpec;
using platform::RuleSpec;

constexpr std::string_view kHeader = "warren-state 1";

// Undo of something that is already gone is success: the kernel deletes routes and addresses
// with their link, and replay may run twice.
bool already_gone(int e) {
  return e == ENODEV || e == ESRCH || e == ENOENT || e == EADDRNOTAVAIL || e == ENXIO;
}
Status undo_status(Status s) {
  return already_gone(s.code()) ? ok() : s;
}

std::string opt(const std::optional<std::uint32_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}


bool one_word(const std::string& s) {
  return !s.empty() && s.find_first_of(" \t\n\r") == std::string::npos;
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

std::string header(System& sys) {
  return std::string(kHeader) + " netns=" + sys.netns_id() + " boot=" + sys.boot_id();
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
  Status apply(System& sys) override { return sys.net().set_mtu(ifindex_, mtu_); }
  Status undo(System& sys) override { return undo_status(sys.net().set_mtu(ifindex_, old_)); }

 private:
  std::uint32_t ifindex_, mtu_, old_;
};

class LinkUpStep final : public Step {
 public:
  explicit LinkUpStep(std::uint32_t ifindex) : ifindex_(ifindex) {}
  std::string journal_line() const override { return "up " + std::to_string(ifindex_); }
  std::string describe() const override { return "set link up"; }
  Status apply(System& sys) override { return sys.net().set_up(ifindex_, true); }
  Status undo(System& sys) override { return undo_status(sys.net().set_up(ifindex_, false)); }

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
  Status apply(System& sys) override { return sys.net().add_address(ifindex_, address_); }
  Status undo(System& sys) override {
    return undo_status(sys.net().delete_address(ifindex_, address_));
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
  Status apply(System& sys) override { return sys.net().add_route(route_); }
  Status undo(System& sys) override { return undo_status(sys.net().delete_route(route_)); }

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
  Status apply(System& sys) override { return sys.net().add_rule(rule_); }
  Status undo(System& sys) override { return undo_status(sys.net().delete_rule(rule_)); }

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
  Status apply(System& sys) override { return sys.write_file(path_, value_ + "\n", 0644, true); }
  Status undo(System& sys) override { return sys.write_file(path_, old_ + "\n", 0644, true); }

 private:
  std::string path_, value_, old_;
};

std::vector<std::string> firewall_argv(net::Family f, const std::string& table, const char* op,
                                       const std::vector<std::string>& rule) {
  // -w: wait for the xtables lock instead of failing when another program holds it.
  std::vector<std::string> a{f == net::Family::kV4 ? "iptables" : "ip6tables", "-w", "5", "-t",
                             table, op};
  a.insert(a.end(), rule.begin(), rule.end());
  return a;
}

class FirewallStep final : public Step {
 public:
  FirewallStep(net::Family f, std::string table, std::vector<std::string> rule)
      : family_(f), table_(std::move(table)), rule_(std::move(rule)) {}
  std::string journal_line() const override {
    std::string l = std::string("firewall ") + (family_ == net::Family::kV4 ? "4" : "6") + " " +
                    table_;
    for (const auto& w : rule_)
      l += " " + w;
    return l;
  }
  std::string describe() const override {
    std::string d = std::string(family_ == net::Family::kV4 ? "iptables" : "ip6tables") + " -t " +
                    table_ + " -I";
    for (const auto& w : rule_)
      d += " " + w;
    return d;
  }
  Status apply(System& sys) override {
    return run_checked(sys, firewall_argv(family_, table_, "-I", rule_));
  }
  Status undo(System& sys) override {
    auto present = firewall_rule_present(sys, family_, table_, rule_);
    if (!present)
      return present.error();
    if (!*present)
      return ok();  // gone already (deleted by hand, or an earlier replay)
    return run_checked(sys, firewall_argv(family_, table_, "-D", rule_));
  }

 private:
  net::Family family_;
  std::string table_;
  std::vector<std::string> rule_;
};

// `table F N` then `delete table F N` in the same transaction deletes the table whether or
// not it existed (nft 1.0.6 has no `destroy`); a third command then adds it afresh, so a
// leftover of a crashed run is replaced, never merged into.
class NftTableStep final : public Step {
 public:
  NftTableStep(std::string family, std::string name, std::string definition)
      : family_(std::move(family)), name_(std::move(name)), definition_(std::move(definition)) {}
  std::string journal_line() const override { return "nft-table " + family_ + " " + name_; }
  std::string describe() const override { return "nftables table " + family_ + " " + name_; }
  Status apply(System& sys) override { return sys.nft().run(remove_script() + definition_); }
  Status undo(System& sys) override { return sys.nft().run(remove_script()); }

 private:
  std::string remove_script() const {
    const std::string t = "table " + family_ + " " + name_ + "\n";
    return t + "delete " + t;
  }
  std::string family_, name_, definition_;
};

bool nft_table_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::isalpha(static_cast<unsigned char>(name[0])) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
         });
}

bool nft_family(const std::string& f) {
  return f == "inet" || f == "ip" || f == "ip6";
}

bool safe_sysctl_path(const std::string& p) {
  return p.rfind("/proc/sys/", 0) == 0 && p.find("..") == std::string::npos && one_word(p);
}

}  // namespace

std::vector<std::string> journal_words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w)
    out.push_back(w);
  return out;
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
std::unique_ptr<Step> make_firewall_step(net::Family family, std::string table,
                                         std::vector<std::string> rule) {
  return std::make_unique<FirewallStep>(family, std::move(table), std::move(rule));
}

std::unique_ptr<Step> make_nft_table_step(std::string family, std::string name,
                                          std::string definition) {
  return std::make_unique<NftTableStep>(std::move(family), std::move(name), std::move(definition));
}

Result<bool> firewall_rule_present(System& sys, net::Family family, const std::string& table,
                                   const std::vector<std::string>& rule) {
  auto r = sys.run(firewall_argv(family, table, "-C", rule), "");
  if (!r)
    return r.error();
  if (r->status == 0)
    return true;
  if (r->status == 1)  // "Bad rule (does a matching rule exist in that chain?)"
    return false;
  std::string line = r->output.substr(0, r->output.find('\n'));
  return Error(EIO, std::string(family == net::Family::kV4 ? "iptables" : "ip6tables") +
                        " -C exited with status " + std::to_string(r->status) +
                        (line.empty() ? "" : ": " + line));
}

Result<std::string> read_sysctl(System& sys, const std::string& path) {
  auto r = sys.read_file(path);
  if (!r)
    return r.error();
  std::string v = *r;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ' || v.back() == '\t'))
    v.pop_back();
  return v;
}

std::unique_ptr<Step> parse_host_step(std::string_view line) {
  const auto w = journal_words(line);
  if (w.empty())
    return nullptr;
  if (w[0] == "nft-table" && w.size() == 3 && nft_family(w[1]) && nft_table_name(w[2]))
    return make_nft_table_step(w[1], w[2], "");
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
  if (w[0] == "sysctl" && w.size() == 4 && safe_sysctl_path(w[1]))
    return make_sysctl_step(w[1], w[2], w[3]);
  if (w[0] == "firewall" && w.size() >= 4 && (w[1] == "4" || w[1] == "6"))
    return make_firewall_step(w[1] == "4" ? net::Family::kV4 : net::Family::kV6, w[2],
                              std::vector<std::string>(w.begin() + 3, w.end()));
  return nullptr;
}

// ---- ActiveSetup ---------------------------------------------------------------------------

Result<std::unique_ptr<ActiveSetup>> ActiveSetup::open(System& sys,
                                                       const std::string& journal_path) {
  if (!journal_path.empty()) {
    if (auto s = sys.write_file(journal_path, header(sys) + "\n", 0600, false); !s)
      return s.error().with_context("cannot write the state journal");
  }
  return std::unique_ptr<ActiveSetup>(new ActiveSetup(sys, journal_path));
}

ActiveSetup::~ActiveSetup() {
  (void)rollback();
}

Status ActiveSetup::apply(std::unique_ptr<Step> step) {
  if (!journal_.empty()) {
    if (auto s = sys_.append_file(journal_, step->journal_line()); !s)
      return s.error().with_context(step->describe() + ": journal");
  }
  if (auto s = step->apply(sys_); !s)
    return s.error().with_context(step->describe());
  steps_.push_back(std::move(step));
  return ok();
}

std::vector<Error> ActiveSetup::rollback() {
  std::vector<Error> errors;
  while (!steps_.empty()) {
    auto& s = steps_.back();
    if (auto u = s->undo(sys_); !u)
      errors.push_back(u.error().with_context("undo " + s->describe()));
    steps_.pop_back();
  }
  if (!journal_.empty()) {
    if (errors.empty()) {
      if (auto r = sys_.remove_file(journal_); !r)
        errors.push_back(r.error());
    }
    journal_.clear();
  }
  return errors;
}

ActiveSetup::TakenBack ActiveSetup::take_back(std::size_t keep) {
  TakenBack r;
  while (steps_.size() > keep) {
    auto& s = steps_.back();
    if (auto u = s->undo(sys_); !u) {
      r.error = u.error().with_context("undo " + s->describe());
      break;
    }
    r.steps.push_back(std::move(s));
    steps_.pop_back();
  }
  std::reverse(r.steps.begin(), r.steps.end());
  if (!journal_.empty() && !r.steps.empty()) {
    std::string text = header(sys_) + "\n";
    for (const auto& s : steps_)
      text += s->journal_line() + "\n";
    if (auto w = sys_.write_file(journal_, text, 0600, false); !w && !r.error)
      r.error = w.error().with_context("cannot rewrite the state journal");
  }
  return r;
}

Error rollback_after(ActiveSetup& setup, Error failure) {
  std::string m = failure.text();
  for (const auto& u : setup.rollback())
    m += "\n  rollback: " + u.text();
  return Error(failure.code, m);
}

ReplayResult replay_journal(System& sys, const std::string& path, const StepParser& parse) {
  return replay_journal_checked(sys, path, StepChecker([&parse](std::string_view line)
                                                   -> Result<std::unique_ptr<Step>> {
    auto step = parse(line);
    if (!step)
      return Error(EINVAL, "not a step this program takes");
    return step;
  }));
}

namespace {

// "DEV:INO" -> "INO". The inode of a network namespace identifies it across a reboot only for
// the initial one (a fixed number, PROC_NET_INIT_INO); nsfs's device number is assigned at boot.
std::string netns_inode(const std::string& id) {
  const auto colon = id.find(':');
  return colon == std::string::npos ? id : id.substr(colon + 1);
}

}  // namespace

ReplayResult replay_journal_checked(System& sys, const std::string& path,
                                    const StepChecker& check) {
  ReplayResult r;
  auto text = sys.read_file(path);
  if (!text) {
    if (text.error().code != ENOENT)
      r.errors.push_back(text.error().with_context("cannot read the state journal"));
    return r;
  }
  r.found = true;
  std::vector<std::string> lines;
  std::istringstream in(*text);
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);
  const auto head = lines.empty() ? std::vector<std::string>{} : journal_words(lines[0]);
  const std::string ns = "netns=" + sys.netns_id();
  const std::string boot = "boot=" + sys.boot_id();
  const bool ours = head.size() >= 3 && head[0] + " " + head[1] == kHeader;
  // A header without boot= is a journal of an older warren (on tmpfs, so from this boot).
  const bool this_boot = ours && head[2] == ns &&
                         ((head.size() == 4 && head[3] == boot) || head.size() == 3);
  // Written before a reboot: whatever it changed in the kernel did not survive the reboot, and
  // undoing that now would overwrite today's settings; a file it rewrote on disk did survive.
  r.stale = ours && head.size() == 4 && head[3] != boot && head[3].rfind("boot=", 0) == 0 &&
            head[2].rfind("netns=", 0) == 0 &&
            netns_inode(head[2].substr(6)) == netns_inode(sys.netns_id());
  if (!this_boot && !r.stale) {
    r.errors.push_back(Error(
        EXDEV, path + ": written in another network namespace or by another version (" +
                   (lines.empty() ? std::string("empty") : lines[0]) +
                   "); clean up there, or delete the file"));
    return r;
  }
  // Parse everything before undoing anything: a journal with a step this program would never
  // have taken (edited, or not ours) is refused as a whole.
  std::vector<std::unique_ptr<Step>> steps;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty())
      continue;
    auto step = check(lines[i]);
    if (!step) {
      // Only the last line can be torn by a crash mid-write, and then its step never ran.
      if (i == lines.size() - 1 && text->back() != '\n')
        continue;
      r.errors.push_back(Error(EINVAL, path + ":" + std::to_string(i + 1) +
                                           ": refusing to replay '" + lines[i] +
                                           "': " + step.error().text() +
                                           "; nothing of this journal was undone"));
      return r;
    }
    steps.push_back(std::move(*step));
  }
  for (std::size_t i = steps.size(); i-- > 0;) {
    if (r.stale && !steps[i]->survives_reboot())
      continue;
    if (auto s = steps[i]->undo(sys); !s)
      r.errors.push_back(s.error().with_context("undo " + steps[i]->describe()));
    else
      ++r.undone;
  }
  if (r.errors.empty()) {
    if (auto s = sys.remove_file(path); !s)
      r.errors.push_back(s.error());
  }
  return r;
}

}  // namespace warren::host
