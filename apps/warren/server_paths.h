#pragma once
/// Where `warren server` looks for its config and keeps its state when the operator does not
/// say (the FHS layout of an installed server; docs/SERVER.md "Files" has the rule in prose):
///
///   warren server                     ─► config /etc/warren/server.toml
///   state named beside /etc/warren/*  ─► /var/lib/warren/<same file name>
///                                        unless that file already exists beside the config
///
/// The config parser (src/server/config.h) resolves `private_key_file` and `[storage] database`
/// against the config file's directory; the TLS identity and the host journal sit beside the
/// database. For a config in /etc/warren that would put keys and a database that changes every
/// minute into /etc, which the service unit mounts read-only. So a state file whose resolved
/// path is directly in the config's directory moves to the state directory — unless it exists
/// there already: a server installed before this rule (state beside its config) keeps using
/// its files, and moving them to /var/lib/warren is a plain `mv`. Names that point elsewhere
/// (an absolute path, a subdirectory) are used as given, and configs outside /etc/warren
/// (a test's temporary directory, a home directory) keep everything beside themselves.
///
/// Pure string logic (the "exists" test is injected) so a unit test covers every case.

#include <functional>
#include <string>
#include <string_view>

namespace warren::apps {

inline constexpr std::string_view kDefaultServerConfig = "/etc/warren/server.toml";
inline constexpr std::string_view kServerConfigDir = "/etc/warren";
inline constexpr std::string_view kServerStateDir = "/var/lib/warren";

/// The path to use for the state file that the config resolved to `resolved`.
/// `config_dir` is the config file's directory as the parser resolved it.
[[nodiscard]] inline std::string server_state_path(
    const std::string& resolved, const std::string& config_dir,
    const std::function<bool(const std::string&)>& exists,
    std::string_view fhs_config_dir = kServerConfigDir,
    std::string_view state_dir = kServerStateDir) {
  const auto slash = resolved.rfind('/');
  if (slash == std::string::npos)
    return resolved;
  const std::string_view dir = std::string_view(resolved).substr(0, slash);
  if (config_dir != fhs_config_dir || dir != fhs_config_dir)
    return resolved;  // not the installed layout, or named elsewhere on purpose
  if (exists(resolved))
    return resolved;  // an installation from before the rule: its state stays where it is
  return std::string(state_dir) + std::string(std::string_view(resolved).substr(slash));
}

}  // namespace warren::apps
