// warren_enroll_tool INVITE NAME KEYFILE: enrolls with the control library and prints the
// result as shell assignments, so namespace tests can drive plain warren-wg clients before
// `warren join` exists. KEYFILE holds the client's private key (created 0600 when missing).
// Exit 1 with "CODE: message" on stderr when the enrollment fails.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "control/enroll.h"
#include "crypto/random.h"

using namespace warren;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s INVITE NAME KEYFILE\n", argv[0]);
    return 2;
  }
  crypto::PrivateKey key;
  std::ifstream in(argv[3]);
  std::string text;
  if (in && std::getline(in, text)) {
    if (!crypto::secret_from_base64(text, key)) {
      std::fprintf(stderr, "%s: not a key\n", argv[3]);
      return 1;
    }
  } else {
    key = crypto::generate_private_key(crypto::SystemRandom::instance());
    std::string b64 = crypto::secret_to_base64(key) + "\n";
    int fd = ::open(argv[3], O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ::write(fd, b64.data(), b64.size()) != static_cast<ssize_t>(b64.size())) {
      std::perror(argv[3]);
      return 1;
    }
    ::close(fd);
  }
  auto inv = control::parse_invite(argv[1]);
  if (!inv.ok()) {
    std::fprintf(stderr, "invalid_invite: %s\n", inv.error.c_str());
    return 1;
  }
  try {
    auto e = control::enroll(*inv.value, argv[2], crypto::derive_public_key(key),
                             std::chrono::seconds(20));
    auto join = [](const auto& v) {
      std::string s;
      for (const auto& x : v)
        s += (s.empty() ? "" : " ") + x.to_string();
      return s;
    };
    std::printf("NAME='%s'\nADDRESSES='%s'\nSERVER_KEY='%s'\nENDPOINT='%s'\nROUTES='%s'\n"
                "DNS='%s'\nMTU=%u\nKEEPALIVE=%u\n",
                e.name.c_str(), join(e.addresses).c_str(), e.server_public_key.to_base64().c_str(),
                e.server_endpoint.c_str(), join(e.routes).c_str(), join(e.dns).c_str(), e.mtu,
                static_cast<unsigned>(e.persistent_keepalive));
    return 0;
  } catch (const control::EnrollError& e) {
    std::fprintf(stderr, "%s: %s\n", e.code().c_str(), e.what());
    return 1;
  }
}
