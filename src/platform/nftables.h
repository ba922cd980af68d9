#pragma once
/// nftables: runs scripts in the `nft -f` language against the kernel's ruleset of the
/// calling thread's network namespace (libnftables on Linux).
///
/// Every run() is one netlink batch, hence one kernel transaction: either every command of
/// the script takes effect or none does (a failure in the middle leaves the ruleset as it
/// was). The server uses that to add and remove its own table in one step
/// (server/nft_ruleset.h).

#include <memory>
#include <string>

#include "base/result.h"

namespace warren::platform {

class Nftables {
 public:
  virtual ~Nftables() = default;
  /// Runs `script` atomically. The error quotes the first line of nft's own message (e.g.
  /// "nftables: Error: Could not process rule: No such file or directory", code ENOENT).
  [[nodiscard]] virtual Status run(const std::string& script) = 0;
  /// The ruleset of table `family name` as `nft list table` prints it; an error with code
  /// ENOENT when there is no such table.
  [[nodiscard]] virtual Result<std::string> list_table(const std::string& family,
                                                       const std::string& name) = 0;
};

/// A libnftables context for this network namespace. Commands need CAP_NET_ADMIN; the error
/// of a run() without it has code EPERM.
Result<std::unique_ptr<Nftables>> open_nftables();

}  // namespace warren::platform
