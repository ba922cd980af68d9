// The journal-stream check's pure part (see log_output.h).

#include "platform/log_output.h"

#include <charconv>

namespace warren::platform {

std::optional<StreamIdentity> parse_journal_stream(std::string_view value) {
  const auto colon = value.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size())
    return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<std::uint64_t> {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size())
      return std::nullopt;
    return n;
  };
  const auto dev = number(value.substr(0, colon));
  const auto ino = number(value.substr(colon + 1));
  if (!dev || !ino)
    return std::nullopt;
  return StreamIdentity{*dev, *ino};
}

bool journal_connected(const char* journal_stream, const Result<StreamIdentity>& stderr_id) {
  if (journal_stream == nullptr || !stderr_id.ok())
    return false;
  const auto named = parse_journal_stream(journal_stream);
  return named && named->device == stderr_id->device && named->inode == stderr_id->inode;
}

}  // namespace warren::platform
