#pragma once
/// FakeSystem: client::System in memory, for unit tests of the set-up and its rollback.
///
/// Files are a map; resolvconf and resolvectl are modelled (what `-a`/`-d`, `dns`/`domain`/
/// `revert` leave configured), every other program fails. `fail_op(n)` makes the n-th file or
/// program operation from now fail; the FakeNetConfig (net()) injects its own failures. The
/// whole observable state compares with ==.

#include <map>
#include <string>
#include <vector>

#include "client/system.h"
#include "platform/fake/fake_netconfig.h"

namespace warren::client::fake {

struct FakeSystemState {
  platform::fake::FakeNetState net;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> resolvconf;             ///< record name -> content
  std::map<std::string, std::vector<std::string>> resolved;  ///< ifname -> settings
  friend bool operator==(const FakeSystemState&, const FakeSystemState&) = default;
};

class FakeSystem final : public System {
 public:
  platform::fake::FakeNetConfig& fake_net() { return net_; }
  FakeSystemState state() const {
    return FakeSystemState{net_.state(), files_, resolvconf_, resolved_};
  }
  std::map<std::string, std::string>& files() { return files_; }
  void set_programs(std::vector<std::string> names) { programs_ = std::move(names); }
  void set_resolved_running(bool on) { resolved_running_ = on; }
  void set_netns_id(std::string id) { netns_ = std::move(id); }
  /// The n-th file/program operation from now fails (1 = the next); 0 disarms.
  void fail_op(unsigned n) { countdown_ = n; }
  unsigned ops() const { return ops_; }
  const std::vector<std::string>& commands() const { return commands_; }

  platform::NetConfig& net() override { return net_; }
  bool read_file(const std::string& path, std::string& content, int& error) override;
  std::string write_file(const std::string& path, const std::string& content, unsigned mode,
                         bool in_place) override;
  std::string append_file(const std::string& path, const std::string& line) override;
  std::string remove_file(const std::string& path) override;
  std::string run(const std::vector<std::string>& argv, const std::string& input) override;
  bool program_exists(const std::string& name) override;
  bool resolved_running() override { return resolved_running_; }
  std::string netns_id() override { return netns_; }

 private:
  bool inject();

  platform::fake::FakeNetConfig net_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> resolvconf_;
  std::map<std::string, std::vector<std::string>> resolved_;
  std::vector<std::string> programs_;
  std::vector<std::string> commands_;
  bool resolved_running_ = false;
  std::string netns_ = "fake";
  unsigned countdown_ = 0;
  unsigned ops_ = 0;
};

}  // namespace warren::client::fake
