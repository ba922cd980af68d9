// The server's host changes (see host_setup.h).
#include "server/host_setup.h"

#include <cerrno>
#include <sstream>
#include <utility>

#include "platform/control_socket.h"
#include "platform/log.h"
#include "server/nft_ruleset.h"
#include "uapi/server.h"

namespace warren::server {
namespace {


bool numeric(const std::string& s) {
  return !s.empty() && s.size() <= 4 && s.find_first_not_of("0123456789") == std::string::npos;
}

// An interface name as the kernel accepts it (IFNAMSIZ, no '/', no whitespace).
bool interface_name(const std::string& s) {
  return !s.empty() && s.size() < 16 && s.find_first_of("/: \t") == std::string::npos;
}

}  // namespace

std::string host_journal_path(const ServerConfig& c) {
  return c.database_dir() + "/" + c.interface + "-host.journal";
}

std::vector<std::vector<std::string>> forward_rules(const ServerConfig& c) {
  const std::string tag = "warren:" + c.interface;
  return {{"FORWARD", "-i", c.interface, "-j", "ACCEPT", "-m", "comment", "--comment", tag},
          {"FORWARD", "-o", c.interface, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
           "-j", "ACCEPT", "-m", "comment", "--comment", tag}};
}

host::StepParser server_step_parser(const ServerConfig& config) {
  const std::string tag = "warren:" + config.interface;
  const std::string table = nft_table_name(config);
  const auto rules = forward_rules(config);
  return [tag, table, rules](std::string_view line) -> std::unique_ptr<host::Step> {
    const auto w = host::journal_words(line);
    if (w.size() == 4 && w[0] == "sysctl" && (w[1] == kIpv4ForwardPath || w[1] == kIpv6ForwardPath) &&
        numeric(w[2]) && numeric(w[3]))
      return host::make_sysctl_step(w[1], w[2], w[3]);
    if (w.size() == 3 && w[0] == "nft-table" && w[1] == kNftFamily && w[2] == table)
      return host::make_nft_table_step(w[1], w[2], "");
    // firewall 4|6 filter RULE: exactly one of today's accept rules (the journal's name is
    // the interface's, so the rules cannot differ).
    if (w.size() > 3 && w[0] == "firewall" && (w[1] == "4" || w[1] == "6") && w[2] == "filter") {
      const std::vector<std::string> rule(w.begin() + 3, w.end());
      for (const auto& r : rules)
        if (r == rule)
          return host::make_firewall_step(w[1] == "4" ? net::Family::kV4 : net::Family::kV6,
                                          "filter", rule);
      return nullptr;
    }
    // Journals of earlier versions, which masqueraded with iptables:
    // firewall 4 nat POSTROUTING -s PREFIX -o IFNAME -j MASQUERADE -m comment --comment TAG
    // (the out-interface and prefix may differ from today's config).
    if (w.size() == 14 && w[0] == "firewall" && w[1] == "4" && w[2] == "nat" &&
        w[3] == "POSTROUTING" && w[4] == "-s" && net::Prefix::parse(w[5]) && w[6] == "-o" &&
        interface_name(w[7]) && w[8] == "-j" && w[9] == "MASQUERADE" && w[10] == "-m" &&
        w[11] == "comment" && w[12] == "--comment" && w[13] == tag)
      return host::make_firewall_step(net::Family::kV4, "nat",
                                      std::vector<std::string>(w.begin() + 3, w.end()));
    return nullptr;
  };
}

namespace {

// Whether iptables' (v4) or ip6tables' (v6) filter FORWARD chain can drop a forwarded packet:
// false when the program is not installed (no such chain) or the chain is the default
// `-P FORWARD ACCEPT` with no rules. `iptables -S` creates no table when there is none.
Result<bool> forward_chain_filters(host::System& sys, net::Family f, HostPlan& plan) {
  const std::string prog = f == net::Family::kV4 ? "iptables" : "ip6tables";
  auto r = sys.run({prog, "-w", "5", "-S", "FORWARD"}, "");
  if (!r)
    return r.error().code == ENOENT ? Result<bool>(false)
                                    : Result<bool>(r.error().with_context("cannot run " + prog));
  if (r->status != 0) {
    // Installed but without a usable filter table (e.g. ip6tables on a kernel without IPv6
    // netfilter): no chain there can drop what we forward.
    plan.notes.push_back(prog + " -S FORWARD failed (" + r->output.substr(0, r->output.find('\n')) +
                         "): no accept rules added there");
    return false;
  }
  std::string out = r->output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out != "-P FORWARD ACCEPT";
}

}  // namespace

Result<HostPlan> plan_host_steps(host::System& sys, const ServerConfig& c) {
  HostPlan plan;
  // The table first, the accept rules next, forwarding last: nothing is forwarded before the
  // masquerade rules are in place.
  if (c.nat)
    plan.steps.push_back(
        host::make_nft_table_step(kNftFamily, nft_table_name(c), nft_table_definition(c)));
  // Client-to-client traffic goes back into the TUN through the kernel's routing, and full
  // tunnel traffic out of another interface: both are forwarded.
  const bool forwarding = c.client_to_client || c.nat;
  std::vector<std::pair<net::Family, const char*>> families;
  if (forwarding && c.ipv4)
    families.emplace_back(net::Family::kV4, kIpv4ForwardPath);
  if (forwarding && c.ipv6)
    families.emplace_back(net::Family::kV6, kIpv6ForwardPath);
  for (const auto& [family, path] : families) {
    const char* prog = family == net::Family::kV4 ? "iptables" : "ip6tables";
    auto filters = forward_chain_filters(sys, family, plan);
    if (!filters)
      return filters.error();
    if (!*filters)
      continue;
    plan.notes.push_back(std::string(prog) +
                         "'s FORWARD chain can drop (its policy is not ACCEPT or it has rules): "
                         "accept rules for " +
                         c.interface + " go at its top");
    for (const auto& rule : forward_rules(c)) {
      auto present = host::firewall_rule_present(sys, family, "filter", rule);
      if (!present)
        return present.error().with_context("cannot check the FORWARD accept rule");
      if (*present)
        plan.notes.push_back(std::string("the ") + prog + " FORWARD accept rule for " +
                             c.interface +
                             " is already in place (not added by this server: left as it is)");
      else
        plan.steps.push_back(host::make_firewall_step(family, "filter", rule));
    }
  }
  for (const auto& [family, path] : families) {
    auto old = host::read_sysctl(sys, path);
    if (!old)
      return old.error().with_context("cannot read " + std::string(path));
    if (*old != "1")
      plan.steps.push_back(host::make_sysctl_step(path, "1", old->empty() ? "0" : *old));
  }
  return plan;
}

Result<std::unique_ptr<host::ActiveSetup>> set_up_host(host::System& sys,
                                                       const ServerConfig& config,
                                                       const std::string& journal_path) {
  auto replay = host::replay_journal(sys, journal_path, server_step_parser(config));
  if (!replay.errors.empty()) {
    std::string m = "cannot recover the host changes of a previous run from " + journal_path;
    for (const auto& e : replay.errors)
      m += "\n  " + e.text();
    return Error(replay.errors.front().code, m);
  }
  if (replay.stale)
    platform::log_error("Discarded %s: written before the last reboot", journal_path.c_str());
  else if (replay.found)
    platform::log_error("The previous run did not stop cleanly; undid %zu host change(s) from %s",
                        replay.undone, journal_path.c_str());
  auto plan = plan_host_steps(sys, config);
  if (!plan)
    return plan.error();
  for (const auto& n : plan->notes)
    platform::log_error("Note: %s", n.c_str());
  auto setup = host::ActiveSetup::open(sys, journal_path);
  if (!setup)
    return setup.error();
  for (auto& step : plan->steps) {
    if (auto s = (*setup)->apply(std::move(step)); !s)
      return host::rollback_after(**setup, s.error());
  }
  return setup;
}

Result<std::unique_ptr<HostSetup>> HostSetup::start(const ServerConfig& config) {
  auto sys = host::make_system();
  if (!sys)
    return sys.error();
  std::unique_ptr<HostSetup> h(new HostSetup());
  h->system_ = std::move(*sys);
  auto setup = set_up_host(*h->system_, config, host_journal_path(config));
  if (!setup)
    return setup.error();
  h->setup_ = std::move(*setup);
  return h;
}

HostSetup::~HostSetup() {
  if (!setup_)
    return;
  for (const auto& e : setup_->rollback())
    platform::log_error("Cannot restore the host: %s (the journal stays for `warren server "
                        "cleanup`)",
                        e.text().c_str());
}

Result<std::vector<std::string>> cleanup(const ServerConfig& config) {
  const std::string uapi_path =
      std::string(uapi::kDefaultSocketDir) + "/" + config.interface + ".sock";
  if (auto probe = platform::connect_unix(uapi_path); probe.ok() || probe.would_block())
    return Error(EBUSY, "the server of " + config.interface + " is running (" + uapi_path +
                            " answers); stop it first: it restores the host itself when it stops");
  auto sys = host::make_system();
  if (!sys)
    return sys.error();
  std::vector<std::string> done;
  const std::string journal = host_journal_path(config);
  auto replay = host::replay_journal(**sys, journal, server_step_parser(config));
  if (!replay.errors.empty()) {
    std::string m = "cannot replay " + journal;
    for (const auto& e : replay.errors)
      m += "\n  " + e.text();
    return Error(replay.errors.front().code, m);
  }
  if (replay.stale)
    done.push_back("discarded " + journal + " (written before the last reboot)");
  else if (replay.found)
    done.push_back("undid " + std::to_string(replay.undone) + " host change(s) from " + journal);
  else
    done.push_back("no journal at " + journal + ": no host changes to undo");
  auto link = (*sys)->net().link_by_name(config.interface);
  if (link.ok()) {
    if (auto s = (*sys)->net().delete_link(link->ifindex); !s.ok())
      return Error(s.code(), "cannot delete interface " + config.interface + ": " + s.message());
    done.push_back("deleted interface " + config.interface);
  }
  return done;
}

}  // namespace warren::server
