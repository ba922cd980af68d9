#include "client/fake/fake_system.h"

#include <algorithm>
#include <cerrno>

namespace warren::client::fake {

bool FakeSystem::inject() {
  ++ops_;
  if (countdown_ == 0)
    return false;
  return --countdown_ == 0;
}

bool FakeSystem::read_file(const std::string& path, std::string& content, int& error) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    error = ENOENT;
    return false;
  }
  content = it->second;
  return true;
}

std::string FakeSystem::write_file(const std::string& path, const std::string& content, unsigned,
                                   bool) {
  if (inject())
    return "write " + path + ": Input/output error (injected)";
  files_[path] = content;
  return "";
}

std::string FakeSystem::append_file(const std::string& path, const std::string& line) {
  if (inject())
    return "write " + path + ": Input/output error (injected)";
  auto it = files_.find(path);
  if (it == files_.end())
    return "open " + path + ": No such file or directory";
  it->second += line + "\n";
  return "";
}

std::string FakeSystem::remove_file(const std::string& path) {
  if (inject())
    return "remove " + path + ": Input/output error (injected)";
  files_.erase(path);
  return "";
}

std::string FakeSystem::run(const std::vector<std::string>& argv, const std::string& input) {
  std::string cmd;
  for (const auto& a : argv)
    cmd += (cmd.empty() ? "" : " ") + a;
  commands_.push_back(cmd);
  if (inject())
    return "`" + cmd + "` exited with status 1 (injected)";
  if (!program_exists(argv.at(0)))
    return argv[0] + ": not found";
  if (argv[0] == "resolvconf" && argv.size() >= 3) {
    if (argv[1] == "-a") {
      resolvconf_[argv[2]] = input;
      return "";
    }
    if (argv[1] == "-d") {
      resolvconf_.erase(argv[2]);
      return "";
    }
  }
  if (argv[0] == "resolvectl" && argv.size() >= 3) {
    if (argv[1] == "revert") {
      resolved_.erase(argv[2]);
      return "";
    }
    if (argv[1] == "dns" || argv[1] == "domain") {
      auto& s = resolved_[argv[2]];
      for (std::size_t i = 3; i < argv.size(); ++i)
        s.push_back(argv[1] + ":" + argv[i]);
      return "";
    }
  }
  return "`" + cmd + "`: not modelled by FakeSystem";
}

bool FakeSystem::program_exists(const std::string& name) {
  return std::find(programs_.begin(), programs_.end(), name) != programs_.end();
}

}  // namespace warren::client::fake
