// warren-enroll-load: the two hosts of tests/integration/test_enroll_dos.sh.
//
//   probe  --invite-file FILE --key-file KEY --count N
//                                           enrolls N times in a row with the key in KEY
//                                           (created when missing: the first enrollment, then
//                                           re-joins) and prints one line "enroll_ms=<ms>" per
//                                           enrollment; exit 1 and the error on the first failure.
//   attack --target IP:PORT --connections N --seconds S [--reopen-ms MS]
//                                           keeps N TCP connections to the enrollment port open
//                                           for S seconds: even slots stay silent, odd slots send
//                                           512 bytes of garbage; a slot the server closes is
//                                           reopened after MS (default 20) ms. Prints
//                                           "connects=<n> closed_by_server=<n> garbage_sent=<n>".
//
// The attacker speaks plain sockets on purpose (it is a test tool, not part of src/).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "control/enroll.h"
#include "crypto/random.h"
#include "platform/files.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace warren;

int usage() {
  std::fprintf(stderr,
               "usage: warren-enroll-load probe --invite-file FILE --key-file KEY --count N\n"
               "       warren-enroll-load attack --target IP:PORT --connections N --seconds S "
               "[--reopen-ms MS]\n");
  return 2;
}

crypto::PrivateKey load_or_create_key(const std::string& path) {
  crypto::PrivateKey key;
  if (auto text = platform::read_file(path, 4096)) {
    std::string_view t(*text);
    while (!t.empty() && t.back() == '\n')
      t.remove_suffix(1);
    if (!crypto::secret_from_base64(t, key)) {
      std::fprintf(stderr, "%s: not a base64 key\n", path.c_str());
      std::exit(1);
    }
    return key;
  }
  key = crypto::generate_private_key(crypto::SystemRandom::instance());
  if (auto st = platform::create_file(path, crypto::secret_to_base64(key) + "\n", 0600); !st) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), st.message().c_str());
    std::exit(1);
  }
  return key;
}

int probe(const std::string& invite_file, const std::string& key_file, int count) {
  auto text = platform::read_file(invite_file, 4096);
  if (!text) {
    std::fprintf(stderr, "%s: %s\n", invite_file.c_str(), text.message().c_str());
    return 1;
  }
  auto invite = control::parse_invite(*text);
  if (!invite.ok()) {
    std::fprintf(stderr, "%s\n", invite.message().c_str());
    return 1;
  }
  const crypto::PrivateKey key = load_or_create_key(key_file);
  for (int i = 0; i < count; ++i) {
    const auto start = Clock::now();
    try {
      (void)control::enroll(*invite, "probe", key, std::chrono::seconds(15));
    } catch (const control::EnrollError& e) {
      std::printf(
          "enroll_failed code=%s after_ms=%lld: %s\n", e.code().c_str(),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()),
          e.what());
      return 1;
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::printf("enroll_ms=%.1f\n", ms);
    std::fflush(stdout);
  }
  return 0;
}

struct Slot {
  int fd = -1;
  bool connected = false;
  bool garbage = false;
  Clock::time_point reopen_at{};
};

int attack(const std::string& target, int connections, int seconds, int reopen_ms) {
  const auto colon = target.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, target.substr(0, colon).c_str(), &to.sin_addr) != 1)
    return usage();
  to.sin_port = htons(static_cast<std::uint16_t>(std::atoi(target.c_str() + colon + 1)));
  std::vector<Slot> slots(static_cast<std::size_t>(connections));
  for (std::size_t i = 0; i < slots.size(); ++i)
    slots[i].garbage = i % 2 == 1;
  char junk[512];
  for (std::size_t i = 0; i < sizeof junk; ++i)
    junk[i] = static_cast<char>(i * 131 + 7);
  long long connects = 0, closed = 0, garbage_sent = 0;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::vector<pollfd> pfds;
  std::vector<std::size_t> owner;
  while (Clock::now() < end) {
    const auto now = Clock::now();
    pfds.clear();
    owner.clear();
    for (std::size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (s.fd < 0 && now >= s.reopen_at) {
        s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s.fd < 0)
          continue;
        s.connected = false;
        ++connects;
        if (::connect(s.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 &&
            errno != EINPROGRESS) {
          ::close(s.fd);
          s.fd = -1;
          s.reopen_at = now + std::chrono::milliseconds(reopen_ms);
          continue;
        }
      }
      if (s.fd >= 0) {
        pfds.push_back({s.fd, static_cast<short>(s.connected ? POLLIN : POLLOUT), 0});
        owner.push_back(i);
      }
    }
    if (::poll(pfds.data(), pfds.size(), 10) < 0 && errno != EINTR)
      return 1;
    for (std::size_t k = 0; k < pfds.size(); ++k) {
      Slot& s = slots[owner[k]];
      if (!pfds[k].revents)
        continue;
      bool drop = false;
      if (!s.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          drop = true;
        } else {
          s.connected = true;
          if (s.garbage && ::send(s.fd, junk, sizeof junk, MSG_NOSIGNAL) > 0)
            ++garbage_sent;
        }
      } else {
        char buf[1024];
        ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
        if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR)))
          drop = true;  // the server closed it (or reset it)
      }
      if (drop) {
        ::close(s.fd);
        s.fd = -1;
        ++closed;
        s.reopen_at = Clock::now() + std::chrono::milliseconds(reopen_ms);
      }
    }
  }
  for (auto& s : slots)
    if (s.fd >= 0)
      ::close(s.fd);
  std::printf("connects=%lld closed_by_server=%lld garbage_sent=%lld\n", connects, closed,
              garbage_sent);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage();
  const std::string_view mode = argv[1];
  std::string invite_file, key_file, target;
  int count = 1, connections = 100, seconds = 5, reopen_ms = 20;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--invite-file")
      invite_file = v;
    else if (a == "--key-file")
      key_file = v;
    else if (a == "--count")
      count = std::atoi(v);
    else if (a == "--target")
      target = v;
    else if (a == "--connections")
      connections = std::atoi(v);
    else if (a == "--seconds")
      seconds = std::atoi(v);
    else if (a == "--reopen-ms")
      reopen_ms = std::atoi(v);
    else
      return usage();
  }
  if (mode == "probe" && !invite_file.empty() && !key_file.empty() && count > 0)
    return probe(invite_file, key_file, count);
  if (mode == "attack" && !target.empty() && connections > 0 && seconds > 0)
    return attack(target, connections, seconds, reopen_ms);
  return usage();
}
