#include "host/fake/fake_system.h"

#include <algorithm>
#include <cerrno>

namespace warren::host::fake {
namespace {

Error injected(const std::string& what) {
  return Error(EIO, what + ": Input/output error (injected)");
}

ProgramExit exited(int status, std::string output = "") {
  return ProgramExit{status, std::move(output)};
}

}  // namespace

bool FakeSystem::inject() {
  ++ops_;
  if (countdown_ == 0)
    return false;
  return --countdown_ == 0;
}

Result<std::string> FakeSystem::read_file(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end())
    return Error(ENOENT, "open " + path + ": No such file or directory");
  return it->second;
}

Status FakeSystem::write_file(const std::string& path, const std::string& content, unsigned,
                              bool) {
  if (inject())
    return injected("write " + path);
  files_[path] = content;
  return ok();
}

Status FakeSystem::append_file(const std::string& path, const std::string& line) {
  if (inject())
    return injected("write " + path);
  auto it = files_.find(path);
  if (it == files_.end())
    return Error(ENOENT, "open " + path + ": No such file or directory");
  it->second += line + "\n";
  return ok();
}

Status FakeSystem::remove_file(const std::string& path) {
  if (inject())
    return injected("remove " + path);
  files_.erase(path);
  return ok();
}

// iptables -w 5 -t TABLE -A|-D|-C RULE...
Result<ProgramExit> FakeSystem::run_firewall(const std::vector<std::string>& argv) {
  if (argv.size() == 5 && argv[1] == "-w" && argv[3] == "-S") {
    // -S CHAIN of the filter table: the policy, then the chain's rules.
    auto pol = policies_.find(argv[0] + " " + argv[4]);
    std::string out =
        "-P " + argv[4] + " " + (pol == policies_.end() ? "ACCEPT" : pol->second) + "\n";
    for (const auto& rule : firewall_[argv[0] + " -t filter"])
      if (rule.rfind(argv[4] + " ", 0) == 0)
        out += "-A " + rule + "\n";
    if (firewall_[argv[0] + " -t filter"].empty())
      firewall_.erase(argv[0] + " -t filter");
    return exited(0, out);
  }
  if (argv.size() < 7 || argv[1] != "-w" || argv[3] != "-t")
    return exited(2, "fake iptables: unexpected arguments");
  std::string rule;
  for (std::size_t i = 6; i < argv.size(); ++i)
    rule += (rule.empty() ? "" : " ") + argv[i];
  const std::string key = argv[0] + " -t " + argv[4];
  auto& rules = firewall_[key];
  auto it = std::find(rules.begin(), rules.end(), rule);
  ProgramExit r;
  if (argv[5] == "-A") {
    rules.push_back(rule);
  } else if (argv[5] == "-I") {
    rules.insert(rules.begin(), rule);
  } else if (argv[5] == "-C" || argv[5] == "-D") {
    if (it == rules.end())
      r = exited(1, argv[0] + ": Bad rule (does a matching rule exist in that chain?).\n");
    else if (argv[5] == "-D")
      rules.erase(it);
  } else {
    r = exited(2, "fake iptables: unexpected operation " + argv[5]);
  }
  if (rules.empty())
    firewall_.erase(key);
  return r;
}

Result<ProgramExit> FakeSystem::run(const std::vector<std::string>& argv,
                                    const std::string& input) {
  std::string cmd;
  for (const auto& a : argv)
    cmd += (cmd.empty() ? "" : " ") + a;
  commands_.push_back(cmd);
  if (inject())
    return Error(EIO, "`" + cmd + "`: Input/output error (injected)");
  if (!program_exists(argv.at(0)))
    return Error(ENOENT, argv[0] + ": not found (is it installed?)");
  if (argv[0] == "iptables" || argv[0] == "ip6tables")
    return run_firewall(argv);
  if (argv[0] == "resolvconf" && argv.size() >= 3) {
    if (argv[1] == "-a") {
      resolvconf_[argv[2]] = input;
      return exited(0);
    }
    if (argv[1] == "-d") {
      resolvconf_.erase(argv[2]);
      return exited(0);
    }
  }
  if (argv[0] == "resolvectl" && argv.size() >= 3) {
    if (argv[1] == "revert") {
      resolved_.erase(argv[2]);
      return exited(0);
    }
    if (argv[1] == "dns" || argv[1] == "domain") {
      auto& s = resolved_[argv[2]];
      for (std::size_t i = 3; i < argv.size(); ++i)
        s.push_back(argv[1] + ":" + argv[i]);
      return exited(0);
    }
  }
  return exited(2, "`" + cmd + "`: not modelled by FakeSystem");
}

bool FakeSystem::program_exists(const std::string& name) {
  return std::find(programs_.begin(), programs_.end(), name) != programs_.end();
}

}  // namespace warren::host::fake
