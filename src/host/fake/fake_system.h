#pragma once
/// FakeSystem: host::System in memory, for unit tests of set-ups and their rollback. Test code
/// only; no production code includes it.
///
/// Files are a map; resolvconf, resolvectl and iptables/ip6tables (-A/-I/-D/-C, and -S of a
/// chain with its policy; -A/-I add even a duplicate, as the real one does) are modelled, every
/// other program fails. nft() is a platform::fake::FakeNftables. `fail_op(n)`
/// makes the n-th file or program operation from now fail; the FakeNetConfig (net()) injects
/// its own failures. The whole observable state compares with ==.

#include <map>
#include <string>
#include <vector>

#include "host/system.h"
#include "platform/fake/fake_netconfig.h"
#include "platform/fake/fake_nftables.h"

namespace warren::host::fake {

struct FakeSystemState {
  platform::fake::FakeNetState net;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> resolvconf;             ///< record name -> content
  std::map<std::string, std::vector<std::string>> resolved;  ///< ifname -> settings
  /// "iptables -t nat" / "ip6tables -t filter" -> its rules ("POSTROUTING -s ..."), in order.
  std::map<std::string, std::vector<std::string>> firewall;
  /// "iptables FORWARD" -> its policy when not ACCEPT.
  std::map<std::string, std::string> policies;
  /// nftables tables ("inet warren_wg0") -> their lines.
  std::map<std::string, std::vector<std::string>> nft_tables;
  friend bool operator==(const FakeSystemState&, const FakeSystemState&) = default;
};

class FakeSystem final : public System {
 public:
  platform::fake::FakeNetConfig& fake_net() { return net_; }
  FakeSystemState state() const {
    return FakeSystemState{net_.state(), files_,    resolvconf_, resolved_,
                           firewall_,    policies_, nft_.tables};
  }
  std::map<std::string, std::string>& files() { return files_; }
  std::map<std::string, std::vector<std::string>>& firewall() { return firewall_; }
  /// "iptables FORWARD" -> "DROP": what `-S FORWARD` reports as the chain's policy.
  std::map<std::string, std::string>& policies() { return policies_; }
  platform::fake::FakeNftables& fake_nft() { return nft_; }
  void set_programs(std::vector<std::string> names) { programs_ = std::move(names); }
  void set_resolved_running(bool on) { resolved_running_ = on; }
  void set_netns_id(std::string id) { netns_ = std::move(id); }
  void set_boot_id(std::string id) { boot_ = std::move(id); }
  /// The n-th file/program operation from now fails (1 = the next); 0 disarms.
  void fail_op(unsigned n) { countdown_ = n; }
  unsigned ops() const { return ops_; }
  const std::vector<std::string>& commands() const { return commands_; }

  platform::NetConfig& net() override { return net_; }
  platform::Nftables& nft() override { return nft_; }
  Result<std::string> read_file(const std::string& path) override;
  Status write_file(const std::string& path, const std::string& content, unsigned mode,
                    bool in_place) override;
  Status append_file(const std::string& path, const std::string& line) override;
  Status remove_file(const std::string& path) override;
  Result<ProgramExit> run(const std::vector<std::string>& argv,
                          const std::string& input) override;
  bool program_exists(const std::string& name) override;
  bool resolved_running() override { return resolved_running_; }
  std::string netns_id() override { return netns_; }
  std::string boot_id() override { return boot_; }

 private:
  bool inject();
  Result<ProgramExit> run_firewall(const std::vector<std::string>& argv);

  platform::fake::FakeNetConfig net_;
  platform::fake::FakeNftables nft_;
  std::map<std::string, std::string> policies_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> resolvconf_;
  std::map<std::string, std::vector<std::string>> resolved_;
  std::map<std::string, std::vector<std::string>> firewall_;
  std::vector<std::string> programs_;
  std::vector<std::string> commands_;
  bool resolved_running_ = false;
  std::string netns_ = "fake";
  std::string boot_ = "boot-1";
  unsigned countdown_ = 0;
  unsigned ops_ = 0;
};

}  // namespace warren::host::fake
