// Regression (found by tests/integration/test_faults.sh): a UAPI listener out of descriptors
// left each new client waiting in the backlog for a reply that never came (`wg show` hung).
// Now the client is taken off the queue and closed, so it sees the end of the connection.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "platform/control_socket.h"

namespace warren::platform {
namespace {

TEST(ControlListenerOutOfDescriptors, RefusesTheClientInsteadOfLeavingItHanging) {
  char dir[] = "/tmp/warren-emfile.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/t.sock";
  auto listener = listen_unix(path);
  ASSERT_TRUE(listener.ok()) << listener.message();

  // The client socket exists before the limit is cut; connecting needs no new descriptor.
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0)
      << std::strerror(errno);

  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  int lowest_free = 0;
  while (::fcntl(lowest_free, F_GETFD) != -1)
    ++lowest_free;
  rlimit cut = old;
  cut.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &cut), 0);
  auto r = (**listener).accept();
  const int err = r.code();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);

  EXPECT_FALSE(r.ok());
  EXPECT_EQ(err, EMFILE);
  // The client was closed by the server: end of file at once, not a wait.
  timeval tv{2, 0};
  ASSERT_EQ(::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  char c;
  EXPECT_EQ(::read(client, &c, 1), 0) << std::strerror(errno);
  ::close(client);

  // With descriptors back, the next client is accepted normally.
  auto again = connect_unix(path);
  ASSERT_TRUE(again.ok()) << again.message();
  auto r2 = (**listener).accept();
  EXPECT_TRUE(r2.ok()) << r2.message();
  listener->reset();
  ::rmdir(dir);
}

}  // namespace
}  // namespace warren::platform
