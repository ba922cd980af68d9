// The real host::System: forwards to platform::NetConfig (rtnetlink), platform/host_io.h
// (programs, identity) and the trusted-file calls of platform/files.h.
#include "host/system.h"

#include "platform/files.h"

namespace warren::host {
namespace {

class RealSystem final : public System {
 public:
  RealSystem(std::unique_ptr<platform::NetConfig> net, std::unique_ptr<platform::Nftables> nft)
      : net_(std::move(net)), nft_(std::move(nft)) {}

  platform::NetConfig& net() override { return *net_; }
  platform::Nftables& nft() override { return *nft_; }
  Result<std::string> read_file(const std::string& path) override {
    return platform::read_trusted_file(path);
  }
  Status write_file(const std::string& path, const std::string& content, unsigned mode,
                    bool in_place) override {
    return platform::write_trusted_file(path, content, mode, in_place);
  }
  Status append_file(const std::string& path, const std::string& line) override {
    return platform::append_trusted_file(path, line);
  }
  Status remove_file(const std::string& path) override {
    return platform::remove_trusted_file(path);
  }
  Result<ProgramExit> run(const std::vector<std::string>& argv,
                          const std::string& input) override {
    return platform::run_program(argv, input);
  }
  bool program_exists(const std::string& name) override { return platform::program_exists(name); }
  bool resolved_running() override { return platform::resolved_running(); }
  std::string netns_id() override { return platform::netns_id(); }
  std::string boot_id() override { return platform::boot_id(); }

 private:
  std::unique_ptr<platform::NetConfig> net_;
  std::unique_ptr<platform::Nftables> nft_;
};

}  // namespace

Status run_checked(System& sys, const std::vector<std::string>& argv, const std::string& input) {
  std::string cmd;
  for (const auto& a : argv)
    cmd += (cmd.empty() ? "" : " ") + a;
  auto r = sys.run(argv, input);
  if (!r)
    return r.error();
  if (r->status == 0)
    return ok();
  std::string line = r->output.substr(0, r->output.find('\n'));
  return Error(EIO, "`" + cmd + "` exited with status " + std::to_string(r->status) +
                        (line.empty() ? "" : ": " + line));
}

Result<std::unique_ptr<System>> make_system() {
  auto net = platform::open_net_config();
  if (!net.ok())
    return Error(net.code(), "cannot open rtnetlink: " + net.message());
  auto nft = platform::open_nftables();
  if (!nft)
    return nft.error();
  return std::unique_ptr<System>(std::make_unique<RealSystem>(std::move(*net), std::move(*nft)));
}

}  // namespace warren::host
