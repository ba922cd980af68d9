#pragma once
/// FakeNftables: the tables of an nftables ruleset in memory, for tests of code that adds and
/// removes its own table. Test code only.
///
/// It understands the table-level commands only, which is all the server sends:
///   `table F N` / `add table F N`          create when missing (no-op otherwise)
///   `table F N { ... }`                    create when missing, append the block's lines
///   `delete table F N`                     remove; fails with ENOENT when missing
/// A script is atomic as in the kernel: when any command fails, no table changes. Every script
/// is recorded; `fail_next(code)` makes the next run() fail with that errno (nothing changes).
///
/// Thread-safety: one thread at a time (tests).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "platform/nftables.h"

namespace warren::platform::fake {

class FakeNftables final : public Nftables {
 public:
  Status run(const std::string& script) override;
  Result<std::string> list_table(const std::string& family, const std::string& name) override;

  /// "inet warren_wg0" -> the lines inside its braces, trimmed, as the scripts gave them.
  std::map<std::string, std::vector<std::string>> tables;
  std::vector<std::string> scripts;  ///< every run() in order, failed ones too
  void fail_next(int code) { fail_next_ = code; }

 private:
  std::optional<int> fail_next_;
};

}  // namespace warren::platform::fake
