// Files and directories on Linux (see platform/files.h).

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "platform/files.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

warren::Status write_all(int fd, std::string_view data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return warren::Error::from_errno(errno, "write");
    if (n == 0)
      return warren::Error::from_errno(EIO, "write");
    off += static_cast<std::size_t>(n);
  }
  return {};
}

}  // namespace

warren::Result<FileInfo> file_info(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return warren::Error::from_errno(errno, "stat");
  return FileInfo{static_cast<unsigned>(st.st_mode & 07777), S_ISDIR(st.st_mode),
                  static_cast<std::uint32_t>(st.st_uid)};
}

warren::Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return warren::Error::from_errno(errno, "open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return warren::Error::from_errno(errno, "fstat");
  if (static_cast<std::size_t>(st.st_size) > max_bytes)
    return warren::Error::from_errno(EFBIG, "read");
  // One allocation of the announced size plus one byte, so that a file which grew meanwhile is
  // noticed rather than read in a second, reallocating pass. A pipe or terminal (standard
  // input) announces no size: it gets the whole bound.
  const std::size_t cap =
      S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : max_bytes;
  std::string out(cap + 1, '\0');
  std::size_t off = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return warren::Error::from_errno(errno, "read");
    if (n == 0)
      break;
    off += static_cast<std::size_t>(n);
    if (off == out.size())
      return warren::Error::from_errno(EFBIG, "read");  // grew while we read; callers retry or fail
  }
  out.resize(off);
  return out;
}

warren::Status create_file(const std::string& path, std::string_view data, unsigned mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd)
    return warren::Error::from_errno(errno, "open");
  warren::Status s = write_all(fd.get(), data);
  if (s && ::fchmod(fd.get(), mode) != 0)
    s = warren::Error::from_errno(errno, "fchmod");
  if (s && ::fsync(fd.get()) != 0)
    s = warren::Error::from_errno(errno, "fsync");
  fd.reset();
  if (!s)
    ::unlink(path.c_str());
  return s;
}

warren::Status replace_file(const std::string& path, std::string_view data, unsigned mode) {
  const std::string tmp = path + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
    return warren::Error::from_errno(errno, "unlink");
  if (warren::Status s = create_file(tmp, data, mode); !s)
    return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    warren::Error e = warren::Error::from_errno(errno, "rename");
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

warren::Status ensure_file(const std::string& path, unsigned mode) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode));
  if (!fd)
    return warren::Error::from_errno(errno, "open");
  return {};
}

warren::Status set_file_mode(const std::string& path, unsigned mode) {
  if (::chmod(path.c_str(), mode) != 0)
    return warren::Error::from_errno(errno, "chmod");
  return {};
}

warren::Status make_directory(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), mode) == 0)
    return {};
  const int e = errno;
  struct stat st {};
  if (e == EEXIST && ::stat(path.c_str(), &st) == 0)
    return S_ISDIR(st.st_mode) ? warren::Status{}
                               : warren::Status(Error::from_errno(ENOTDIR, "mkdir"));
  return warren::Error::from_errno(e, "mkdir");
}

warren::Result<std::vector<std::string>> list_directory(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d)
    return warren::Error::from_errno(errno, "opendir");
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..")
      out.emplace_back(n);
  }
  ::closedir(d);
  return out;
}

std::uint32_t effective_uid() {
  return static_cast<std::uint32_t>(::geteuid());
}

}  // namespace warren::platform
