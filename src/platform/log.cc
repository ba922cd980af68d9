#include "platform/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "platform/log_output.h"

namespace warren::platform {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kError)};

// The prefix and the output sink change only at start-up or in tests; a mutex keeps a reader
// from seeing a half-assigned string.
struct LogState {
  std::mutex mutex;
  std::string interface_name;
  std::function<void(std::string_view)> sink;
  std::unique_ptr<LogFile> file;
  bool journal = false;
};

LogState& state() {
  static LogState s;
  return s;
}

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kVerbose:
      return "INFO";
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kSilent:
      break;
  }
  return "";
}

// sd-daemon(3): LOG_ERR, LOG_INFO, LOG_DEBUG.
const char* journal_priority(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "<3>";
    case LogLevel::kVerbose:
      return "<6>";
    case LogLevel::kDebug:
      return "<7>";
    case LogLevel::kSilent:
      break;
  }
  return "";
}

}  // namespace

namespace detail {
int current_log_level() noexcept {
  return g_level.load(std::memory_order_relaxed);
}
}  // namespace detail

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "silent")
    return LogLevel::kSilent;
  if (text == "error")
    return LogLevel::kError;
  if (text == "verbose")
    return LogLevel::kVerbose;
  if (text == "debug")
    return LogLevel::kDebug;
  return std::nullopt;
}

LogLevel log_level_from_env() {
  const char* v = std::getenv("LOG_LEVEL");
  if (!v)
    return LogLevel::kError;
  return parse_log_level(v).value_or(LogLevel::kError);
}

void log_configure(LogLevel level, std::string interface_name) {
  const bool journal = stderr_is_journal();
  {
    std::lock_guard lock(state().mutex);
    state().interface_name = std::move(interface_name);
    state().journal = journal && !state().file;
  }
  log_set_level(level);
}

void log_set_journal(bool on) {
  std::lock_guard lock(state().mutex);
  state().journal = on;
}

bool log_journal() {
  std::lock_guard lock(state().mutex);
  return state().journal;
}

void log_set_file(std::unique_ptr<LogFile> file) {
  std::lock_guard lock(state().mutex);
  if (file)
    state().journal = false;
  state().file = std::move(file);
}

void log_set_level(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel log_level() {
  return static_cast<LogLevel>(detail::current_log_level());
}

void log_set_output(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(state().mutex);
  state().sink = std::move(sink);
}

void log_vmessage(LogLevel level, const char* format, va_list args) {
  if (level == LogLevel::kSilent || !log_enabled(level))
    return;
  // Formatting happens on the stack: logging must work when memory is short and must not
  // allocate on paths that run per packet at debug level.
  char line[1024];
  std::size_t n = 0;
  auto append = [&](int written) {
    if (written > 0)
      n += static_cast<std::size_t>(written);
    if (n > sizeof(line) - 2)
      n = sizeof(line) - 2;
  };

  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  localtime_r(&now, &tm);

  std::lock_guard lock(state().mutex);
  const std::string& ifname = state().interface_name;
  const bool journal = state().journal;
  const char* priority = journal ? journal_priority(level) : "";
  if (ifname.empty()) {
    append(std::snprintf(line, sizeof(line), "%s%s: ", priority, level_tag(level)));
  } else {
    append(std::snprintf(line, sizeof(line), "%s%s: (%s) ", priority, level_tag(level),
                         ifname.c_str()));
  }
  if (!journal)
    append(static_cast<int>(std::strftime(line + n, sizeof(line) - n, "%Y/%m/%d %H:%M:%S ", &tm)));
  append(std::vsnprintf(line + n, sizeof(line) - n, format, args));
  line[n++] = '\n';

  if (state().sink) {
    state().sink(std::string_view(line, n));
  } else if (state().file) {
    state().file->write(std::string_view(line, n));
  } else {
    std::fwrite(line, 1, n, stderr);
    std::fflush(stderr);
  }
}

void log_message(LogLevel level, const char* format, ...) {
  va_list args;
  va_start(args, format);
  log_vmessage(level, format, args);
  va_end(args);
}

#define WARREN_DEFINE_LOG_FN(name, level) \
  void name(const char* format, ...) {    \
    if (!log_enabled(level))              \
      return;                             \
    va_list args;                         \
    va_start(args, format);               \
    log_vmessage(level, format, args);    \
    va_end(args);                         \
  }

WARREN_DEFINE_LOG_FN(log_error, LogLevel::kError)
WARREN_DEFINE_LOG_FN(log_verbose, LogLevel::kVerbose)
WARREN_DEFINE_LOG_FN(log_debug, LogLevel::kDebug)

#undef WARREN_DEFINE_LOG_FN

}  // namespace warren::platform
