#pragma once
/// Files and directories: everything warren keeps on disk (keys, certificates, configuration,
/// the lease database's file modes, socket directories) goes through these calls, so that only
/// src/platform/linux touches the file system (docs/ARCHITECTURE.md, "Modules and layers").
///
///   read_file ──► warren::Result<std::string>            (bounded; secrets: the caller wipes the
///   text) create_file(path, data, mode)                 O_EXCL, written, mode set, fsync'd — or
///   gone replace_file(path, data, mode)                the same into "path.tmp", then rename(2)
///
/// Every call reports failures as a warren::Error whose code is the errno value (ENOENT,
/// EEXIST, EACCES, ...) and whose op names the failing call, so callers can put the path and
/// their purpose around it. Descriptors never leak: each call opens and closes its own.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace warren::platform {

struct FileInfo {
  unsigned mode = 0;       ///< permission bits (07777)
  bool directory = false;  ///< a directory (else a regular file, socket, ...)
  std::uint32_t owner = 0;
};

/// What `path` is; ENOENT when it does not exist. Follows symbolic links.
warren::Result<FileInfo> file_info(const std::string& path);

/// The whole file, read with one allocation (so a secret is not left behind in freed buffers
/// by a growing string). EFBIG when it is larger than `max_bytes`. Also reads a pipe or
/// terminal to its end ("/dev/stdin"), into a buffer of `max_bytes`.
warren::Result<std::string> read_file(const std::string& path, std::size_t max_bytes = 1 << 20);

/// Creates `path` (EEXIST if anything is there already: never follows or replaces an existing
/// file), writes `data`, sets `mode` exactly (regardless of umask) and fsyncs. On any failure
/// the file is removed again, so a half-written key never stays behind.
warren::Status create_file(const std::string& path, std::string_view data, unsigned mode);

/// Atomically replaces (or creates) `path` with `data` and `mode`: written to "path.tmp" as by
/// create_file (a stale "path.tmp" is removed first), then renamed over `path`.
warren::Status replace_file(const std::string& path, std::string_view data, unsigned mode);

/// Creates an empty `path` with `mode` if it does not exist; an existing file is left as it
/// is (neither truncated nor re-moded).
warren::Status ensure_file(const std::string& path, unsigned mode);

/// chmod(2). ENOENT when `path` does not exist.
warren::Status set_file_mode(const std::string& path, unsigned mode);

/// Creates the directory `path` with `mode` (umask applies, as for mkdir(2)). Success when a
/// directory is already there (its mode is left alone); ENOTDIR when something else is.
warren::Status make_directory(const std::string& path, unsigned mode);

/// The names in directory `path` (without "." and ".."), unsorted.
warren::Result<std::vector<std::string>> list_directory(const std::string& path);

/// The effective user id of this process (for "is this peer root or us" checks).
std::uint32_t effective_uid();

/// The id of the group named `name` (getgrnam_r: /etc/group or NSS); ENOENT when there is no
/// such group.
warren::Result<std::uint32_t> group_id(const std::string& name);

// ---- Files root writes where nobody else may steer it
// --------------------------------------------
//
// The client's journal and resolv.conf backup, /etc/resolv.conf, sysctl files, the host
// journals, PID files, and the key and config of `warren join` are written by root. Each call
// below opens the file's directory first and refuses it unless it is *trusted*: a directory
// owned by root (or by this process's user) that neither group nor others can write. Then the
// file is opened inside that directory (openat, so the checked directory is the one used) with
// O_NOFOLLOW — a symbolic link there is refused (ELOOP) — and an existing file is refused unless
// it is a regular file owned by root (or us) that neither group nor others can write. Refusals
// are EPERM or ELOOP with a message that names the path and the reason.
//
//   trusted dir ─► openat(O_NOFOLLOW) ─► owner/mode check ─► write ─► fsync file
//                                                          ─► fsync dir (entry created/removed)
//
// So what is on disk is never behind what the caller does next (the journal line is durable
// before the host change it announces).

/// EPERM (message naming `dir` and why) unless `dir` is a trusted directory; ENOENT etc. when
/// it cannot be opened.
warren::Status check_trusted_directory(const std::string& dir);

/// The whole file (at most `max_bytes`, else EFBIG; sizes of /proc files are not trusted), read
/// from a trusted directory without following a link. ENOENT (code) when it does not exist.
warren::Result<std::string> read_trusted_file(const std::string& path,
                                              std::size_t max_bytes = 1 << 20);

/// Replaces the content and fsyncs. `in_place`: truncate and rewrite the existing inode (a bind
/// mount such as /etc/resolv.conf inside `ip netns exec`, a /proc/sys file; the mode is left as
/// it is); otherwise `mode` is set. A missing file is created with `mode` (and the directory
/// fsync'd).
warren::Status write_trusted_file(const std::string& path, std::string_view content, unsigned mode,
                                  bool in_place);

/// Appends `line` and '\n' to an existing file and fsyncs it.
warren::Status append_trusted_file(const std::string& path, std::string_view line);

/// Removes the file (not a directory) and fsyncs the directory; a missing file is success.
warren::Status remove_trusted_file(const std::string& path);

/// replace_file into a trusted directory, then fsyncs the directory (the rename is durable).
warren::Status replace_trusted_file(const std::string& path, std::string_view data, unsigned mode);

}  // namespace warren::platform
