// Files and directories on Linux (see platform/files.h).

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

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

warren::Result<std::uint32_t> group_id(const std::string& name) {
  group gr{};
  group* found = nullptr;
  std::vector<char> buf(4096);
  for (;;) {
    const int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0)
      return warren::Error::from_errno(rc, "getgrnam_r").with_context("group '" + name + "'");
    if (!found)
      return warren::Error(ENOENT, "no group named '" + name + "'");
    return static_cast<std::uint32_t>(gr.gr_gid);
  }
}

// ---- trusted files -------------------------------------------------------------------------

namespace {

warren::Error sys_error(const char* what, const std::string& path, int e) {
  return warren::Error(e, std::string(what) + " " + path + ": " + std::strerror(e));
}

std::string octal(unsigned mode) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", mode & 07777);
  return b;
}

bool trusted_owner(uid_t uid) {
  return uid == 0 || uid == ::geteuid();
}

// "/a/b" -> {"/a", "b"}; "b" -> {".", "b"}; "/b" -> {"/", "b"}.
std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

warren::Result<UniqueFd> open_trusted_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return sys_error("open directory", dir, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return sys_error("stat", dir, errno);
  if (!trusted_owner(st.st_uid))
    return warren::Error(EPERM, "refusing to use " + dir + ": it is owned by uid " +
                                    std::to_string(st.st_uid) + ", not root");
  if (st.st_mode & 022)
    return warren::Error(EPERM, "refusing to use " + dir + ": it is writable by group or others (mode " +
                                    octal(st.st_mode) + "); chmod go-w it");
  return fd;
}

warren::Status check_trusted_fd(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return sys_error("stat", path, errno);
  if (!S_ISREG(st.st_mode))
    return warren::Error(EPERM, "refusing to use " + path + ": not a regular file");
  if (!trusted_owner(st.st_uid))
    return warren::Error(EPERM, "refusing to use " + path + ": it is owned by uid " +
                                    std::to_string(st.st_uid) + ", not root");
  if (st.st_mode & 022)
    return warren::Error(EPERM, "refusing to use " + path + ": it is writable by group or others (mode " +
                                    octal(st.st_mode) + ")");
  return {};
}

// openat with O_NOFOLLOW; a link is refused with a message that says so.
warren::Result<UniqueFd> open_in(int dirfd, const std::string& name, const std::string& path,
                                 int flags, unsigned mode = 0) {
  UniqueFd fd(::openat(dirfd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd)
    return fd;
  const int e = errno;
  if (e == ELOOP)
    return warren::Error(ELOOP, "refusing to use " + path +
                                    ": it is a symbolic link (warren never follows one there)");
  return sys_error("open", path, e);
}

warren::Status sync_dir(int dirfd, const std::string& dir) {
  if (::fsync(dirfd) != 0)
    return sys_error("fsync", dir, errno);
  return {};
}

warren::Status write_and_sync(int fd, std::string_view data, const std::string& path) {
  if (auto s = write_all(fd, data); !s)
    return sys_error("write", path, s.error().code);
  // /proc/sys files cannot be fsync'd (EINVAL); a read-only file system has nothing to sync.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
    return sys_error("fsync", path, errno);
  return {};
}

}  // namespace

warren::Status check_trusted_directory(const std::string& dir) {
  auto fd = open_trusted_dir(dir);
  if (!fd)
    return fd.error();
  return {};
}

warren::Result<std::string> read_trusted_file(const std::string& path, std::size_t max_bytes) {
  const auto [dir, name] = split_path(path);
  auto dirfd = open_trusted_dir(dir);
  if (!dirfd)
    return dirfd.error();
  auto fd = open_in(dirfd->get(), name, path, O_RDONLY);
  if (!fd)
    return fd.error();
  if (auto s = check_trusted_fd(fd->get(), path); !s)
    return s.error();
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error("read", path, errno);
    if (n == 0)
      break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes)
      return sys_error("read", path, EFBIG);
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

warren::Status write_trusted_file(const std::string& path, std::string_view content, unsigned mode,
                                  bool in_place) {
  const auto [dir, name] = split_path(path);
  auto dirfd = open_trusted_dir(dir);
  if (!dirfd)
    return dirfd.error();
  // Open without truncating: the checks come before anything of the file changes.
  bool created = false;
  auto fd = open_in(dirfd->get(), name, path, O_WRONLY);
  if (!fd && fd.error().code == ENOENT) {
    fd = open_in(dirfd->get(), name, path, O_WRONLY | O_CREAT | O_EXCL, mode);
    created = fd.ok();
  }
  if (!fd)
    return fd.error();
  if (auto s = check_trusted_fd(fd->get(), path); !s)
    return s;
  if (!in_place && ::fchmod(fd->get(), static_cast<mode_t>(mode)) != 0)
    return sys_error("chmod", path, errno);
  struct stat st {};
  // /proc/sys files report size 0 and are replaced by the write itself.
  if (::fstat(fd->get(), &st) == 0 && st.st_size > 0 && ::ftruncate(fd->get(), 0) != 0)
    return sys_error("truncate", path, errno);
  if (auto s = write_and_sync(fd->get(), content, path); !s)
    return s;
  return created ? sync_dir(dirfd->get(), dir) : warren::Status{};
}

warren::Status append_trusted_file(const std::string& path, std::string_view line) {
  const auto [dir, name] = split_path(path);
  auto dirfd = open_trusted_dir(dir);
  if (!dirfd)
    return dirfd.error();
  auto fd = open_in(dirfd->get(), name, path, O_WRONLY | O_APPEND);
  if (!fd)
    return fd.error();
  if (auto s = check_trusted_fd(fd->get(), path); !s)
    return s;
  std::string l(line);
  l += '\n';
  return write_and_sync(fd->get(), l, path);
}

warren::Status remove_trusted_file(const std::string& path) {
  const auto [dir, name] = split_path(path);
  auto dirfd = open_trusted_dir(dir);
  if (!dirfd)
    return dirfd.error();
  if (::unlinkat(dirfd->get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT)
      return {};
    return sys_error("remove", path, errno);
  }
  return sync_dir(dirfd->get(), dir);
}

warren::Status replace_trusted_file(const std::string& path, std::string_view data, unsigned mode) {
  const std::string dir = split_path(path).first;
  auto dirfd = open_trusted_dir(dir);
  if (!dirfd)
    return dirfd.error();
  // replace_file writes "path.tmp" with O_EXCL|O_NOFOLLOW and renames it over `path`; rename
  // replaces a link planted at `path` rather than following it.
  if (auto s = replace_file(path, data, mode); !s)
    return s.error().with_context(path);
  return sync_dir(dirfd->get(), dir);
}

}  // namespace warren::platform
