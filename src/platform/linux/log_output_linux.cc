// Log outputs on Linux: stderr's identity and the size-capped log file (see log_output.h).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "platform/files.h"
#include "platform/log_output.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

Error file_error(const char* op, const std::string& path, int err) {
  return Error::from_errno(err, op).with_context(path);
}

class CappedLogFile final : public LogFile {
 public:
  CappedLogFile(std::string path, unsigned mode, std::uint64_t max_bytes)
      : path_(std::move(path)), mode_(mode), max_bytes_(max_bytes) {}

  /// Opens (or creates) the file; rotates it first when it is already full.
  Status open() {
    if (auto s = open_current(); !s)
      return s;
    if (size_ >= max_bytes_)
      return rotate();
    return {};
  }

  void write(std::string_view line) noexcept override {
    if (size_ + line.size() > max_bytes_ && size_ > 0)
      (void)rotate();  // on failure keep writing where we are: better big than silent
    if (!fd_.valid())
      return;
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::write(fd_.get(), line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      off += static_cast<std::size_t>(n);
    }
    size_ += line.size();
  }

  const std::string& path() const override { return path_; }

 private:
  Status open_current() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                          static_cast<mode_t>(mode_));
    if (fd < 0)
      return file_error("open", path_, errno);
    UniqueFd file(fd);
    struct stat st {};
    if (::fstat(file.get(), &st) != 0)
      return file_error("fstat", path_, errno);
    if (!S_ISREG(st.st_mode))
      return file_error("open", path_, EINVAL);
    // Exactly `mode` whatever the umask; an operator's chmod of an existing file is kept
    // unless it lets others write (then the next line could be anybody's).
    if (st.st_size == 0 || (st.st_mode & 022) != 0)
      (void)::fchmod(file.get(), static_cast<mode_t>(mode_));
    fd_ = std::move(file);
    size_ = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

  Status rotate() {
    const std::string old = path_ + ".1";
    if (::rename(path_.c_str(), old.c_str()) != 0)
      return file_error("rename", path_, errno);
    return open_current();
  }

  std::string path_;
  unsigned mode_;
  std::uint64_t max_bytes_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
};

}  // namespace

Result<StreamIdentity> stderr_identity() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0)
    return Error::from_errno(errno, "fstat");
  return StreamIdentity{static_cast<std::uint64_t>(st.st_dev),
                        static_cast<std::uint64_t>(st.st_ino)};
}

bool stderr_is_journal() {
  return journal_connected(std::getenv("JOURNAL_STREAM"), stderr_identity());
}

Result<std::unique_ptr<LogFile>> open_log_file(const std::string& path, unsigned mode,
                                               std::uint64_t max_bytes) {
  const auto slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (auto s = check_trusted_directory(dir); !s)
    return s.error();
  auto f = std::make_unique<CappedLogFile>(path, mode, max_bytes);
  if (auto s = f->open(); !s)
    return s.error();
  return std::unique_ptr<LogFile>(std::move(f));
}

}  // namespace warren::platform
