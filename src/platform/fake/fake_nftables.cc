// FakeNftables (see fake_nftables.h).
#include "platform/fake/fake_nftables.h"

#include <cerrno>
#include <sstream>

namespace warren::platform::fake {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return "";
  return s.substr(b, s.find_last_not_of(" \t") + 1 - b);
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;)
    w.push_back(x);
  return w;
}

}  // namespace

Status FakeNftables::run(const std::string& script) {
  scripts.push_back(script);
  if (fail_next_) {
    const int code = *fail_next_;
    fail_next_.reset();
    return Error(code, "nftables: injected failure");
  }
  auto next = tables;  // applied only when the whole script succeeds
  std::istringstream in(script);
  std::string line;
  std::string open;  // the table whose block we are in
  int depth = 0;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#')
      continue;
    if (depth > 0) {
      for (char c : line)
        depth += c == '{' ? 1 : c == '}' ? -1 : 0;
      if (depth > 0 || line != "}")
        next[open].push_back(line);
      continue;
    }
    auto w = words(line);
    if (!w.empty() && w[0] == "add")
      w.erase(w.begin());
    if (w.size() >= 3 && w[0] == "table") {
      open = w[1] + " " + w[2];
      next.try_emplace(open);
      if (w.size() == 4 && w[3] == "{")
        depth = 1;
      else if (w.size() != 3)
        return Error(EINVAL, "nftables: fake cannot parse: " + line);
      continue;
    }
    if (w.size() == 4 && w[0] == "delete" && w[1] == "table") {
      if (next.erase(w[2] + " " + w[3]) == 0)
        return Error(ENOENT,
                     "nftables: Error: Could not process rule: No such file or "
                     "directory: " +
                         line);
      continue;
    }
    return Error(EINVAL, "nftables: fake cannot parse: " + line);
  }
  if (depth != 0)
    return Error(EINVAL, "nftables: unbalanced braces");
  tables = std::move(next);
  return ok();
}

Result<std::string> FakeNftables::list_table(const std::string& family, const std::string& name) {
  auto it = tables.find(family + " " + name);
  if (it == tables.end())
    return Error(ENOENT, "nftables: no table " + family + " " + name);
  std::string out = "table " + it->first + " {\n";
  for (const auto& l : it->second)
    out += "\t" + l + "\n";
  return out + "}\n";
}

}  // namespace warren::platform::fake
