// The server's host changes (see host_setup.h).
#include "server/host_setup.h"

#include <cerrno>
#include <sstream>

#include "platform/control_socket.h"
#include "platform/log.h"
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

std::vector<std::string> nat_rule(const ServerConfig& c) {
  return {"POSTROUTING",
          "-s",
          c.ipv4->prefix.to_string(),
          "-o",
          *c.nat_interface,
          "-j",
          "MASQUERADE",
          "-m",
          "comment",
          "--comment",
          "warren:" + c.interface};
}

host::StepParser server_step_parser(const ServerConfig& config) {
  const std::string tag = "warren:" + config.interface;
  return [tag](std::string_view line) -> std::unique_ptr<host::Step> {
    const auto w = host::journal_words(line);
    if (w.size() == 4 && w[0] == "sysctl" && (w[1] == kIpv4ForwardPath || w[1] == kIpv6ForwardPath) &&
        numeric(w[2]) && numeric(w[3]))
      return host::make_sysctl_step(w[1], w[2], w[3]);
    // firewall 4 nat POSTROUTING -s PREFIX -o IFNAME -j MASQUERADE -m comment --comment TAG:
    // the out-interface and prefix may differ from today's config (it changed since the crash).
    if (w.size() == 14 && w[0] == "firewall" && w[1] == "4" && w[2] == "nat" &&
        w[3] == "POSTROUTING" && w[4] == "-s" && net::Prefix::parse(w[5]) && w[6] == "-o" &&
        interface_name(w[7]) && w[8] == "-j" && w[9] == "MASQUERADE" && w[10] == "-m" &&
        w[11] == "comment" && w[12] == "--comment" && w[13] == tag)
      return host::make_firewall_step(net::Family::kV4, "nat",
                                      std::vector<std::string>(w.begin() + 3, w.end()));
    return nullptr;
  };
}

Result<HostPlan> plan_host_steps(host::System& sys, const ServerConfig& c) {
  HostPlan plan;
  // Forwarding: client-to-client traffic goes back into the TUN through the kernel's routing,
  // and NAT'd traffic out of another interface.
  std::vector<const char*> forward;
  if (c.client_to_client || c.nat_interface) {
    if (c.ipv4)
      forward.push_back(kIpv4ForwardPath);
    if (c.ipv6 && c.client_to_client)
      forward.push_back(kIpv6ForwardPath);
  }
  for (const char* path : forward) {
    auto old = host::read_sysctl(sys, path);
    if (!old)
      return old.error().with_context("cannot read " + std::string(path));
    if (*old != "1")
      plan.steps.push_back(host::make_sysctl_step(path, "1", old->empty() ? "0" : *old));
  }
  if (c.nat_interface && c.ipv4) {
    const auto rule = nat_rule(c);
    auto present = host::firewall_rule_present(sys, net::Family::kV4, "nat", rule);
    if (!present) {
      return present.error().code == ENOENT
                 ? Error(ENOENT, "cannot run iptables for [nat] (install the iptables package)")
                 : present.error().with_context("cannot check the NAT rule");
    }
    if (*present)
      plan.notes.push_back("the NAT rule for " + c.ipv4->prefix.to_string() + " via " +
                           *c.nat_interface +
                           " is already in place (not added by this server: left as it is)");
    else
      plan.steps.push_back(host::make_firewall_step(net::Family::kV4, "nat", rule));
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
