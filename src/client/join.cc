#include "client/join.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "client/resolve.h"
#include "platform/files.h"

namespace warren::client {
namespace {

std::runtime_error file_error(const std::string& what, const std::string& path,
                              const warren::Error& e) {
  return std::runtime_error(what + " " + path + ": " + e.text());
}

}  // namespace

crypto::PrivateKey load_or_create_key(const std::string& path, RandomSource& rng,
                                      std::string* warning) {
  crypto::PrivateKey key;
  // Not through a link, and only a file root (or we) owns that nobody else can write.
  auto contents = platform::read_trusted_file(path, 4096);
  if (contents) {
    auto info = platform::file_info(path);
    if (info && (info->mode & 077) && warning)
      *warning = "Warning: " + path + " is readable by group or others (chmod 600 it)";
    std::string_view text(*contents);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
      text.remove_suffix(1);
    const bool ok = crypto::secret_from_base64(text, key);
    secure_zero(contents->data(), contents->size());
    if (!ok)
      throw std::runtime_error(path + ": not a base64 WireGuard private key");
    return key;
  }
  if (contents.code() != ENOENT)
    throw file_error("read", path, contents.error());
  key = crypto::generate_private_key(rng);
  std::string text = crypto::secret_to_base64(key) + "\n";
  auto created = platform::create_file(path, text, 0600);
  secure_zero(text.data(), text.size());
  if (!created)
    throw file_error("create", path, created.error());
  return key;
}

ClientConfig config_from_enrollment(const control::Enrollment& e, const crypto::PrivateKey& key,
                                    const std::string& interface,
                                    const std::string& control_endpoint) {
  ClientConfig c;
  c.interface = interface;
  c.private_key = key;
  c.addresses = e.addresses;
  c.dns_servers = e.dns;
  c.mtu = e.mtu;
  c.server_name = control_endpoint;
  PeerConfig p;
  p.public_key = e.server_public_key;
  p.allowed_ips = e.routes;
  if (p.allowed_ips.empty())
    p.allowed_ips = e.addresses;  // at least the tunnel itself
  auto hp = parse_host_port(e.server_endpoint);
  if (!hp)
    throw std::runtime_error("the server sent a bad endpoint '" + e.server_endpoint + "'");
  p.endpoint = *hp;
  p.persistent_keepalive = e.persistent_keepalive;
  c.peers.push_back(std::move(p));
  if (e.mesh) {
    // A mesh coordinator: the coordinator stays the one [Peer] above; the mesh peers come from
    // the roster at run time (daemon.h), so only the mesh's own settings go into the file.
    MeshConfig m;
    m.prefix_v4 = e.mesh->prefix_v4.canonical();
    m.prefix_v6 = e.mesh->prefix_v6.canonical();
    if (!m.prefix_v4.address.is_v4() || m.prefix_v6.address.is_v4())
      throw std::runtime_error("the server sent mesh prefixes of the wrong family (" +
                               m.prefix_v4.to_string() + ", " + m.prefix_v6.to_string() + ")");
    if (!e.mesh->domain.empty())
      m.domain = e.mesh->domain;
    m.v4_index = e.mesh->v4_index;
    for (const auto& s : e.mesh->stun) {
      // STUN goes out from the WireGuard socket to an address: a name (the control
      // endpoint's host) is resolved once, here, and the address written.
      auto stun = parse_host_port(s);
      std::string error;
      auto ep = stun ? resolve_endpoint(*stun, error) : std::nullopt;
      if (!ep || ep->port == 0)
        throw std::runtime_error("the server sent a STUN server '" + s + "' that " +
                                 (stun ? "does not resolve (" + error + ")" : "is not host:port"));
      m.stun.push_back(*ep);
    }
    if (!e.mesh->relay.empty()) {
      auto relay = parse_host_port(e.mesh->relay);
      if (!relay)
        throw std::runtime_error("the server sent a bad relay '" + e.mesh->relay + "'");
      m.relay = *relay;
    }
    c.mesh = std::move(m);
  }
  if (e.quic) {
    // The server offers QUIC (issue 15): record it, and let `up` fall back to it (auto).
    auto quic = parse_host_port(e.quic->endpoint);
    if (!quic || quic->port == 0)
      throw std::runtime_error("the server sent a bad QUIC endpoint '" +
                               net::printable(e.quic->endpoint) + "'");
    c.quic_endpoint = *quic;
    c.transport = Transport::kAuto;
  }
  return c;
}

void write_private_file(const std::string& path, const std::string& text) {
  if (auto st = platform::replace_trusted_file(path, text, 0600); !st)
    throw file_error("write", path, st.error());
}

namespace {

// The server answers "busy" when its queue of verified requests is full (many hosts joining at
// once; control/enroll.h): it handled nothing and says "try again shortly", so join does, after
// a jittered pause (0.5 s doubling, each up to 1.5x), for as long as the overall timeout allows.
// Every other refusal is final.
control::Enrollment enroll_retrying_busy(const control::Invite& invite, std::string_view name,
                                         const crypto::PrivateKey& key,
                                         std::chrono::milliseconds timeout, RandomSource& rng) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + timeout;
  std::chrono::milliseconds pause{500};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    try {
      return control::enroll(invite, name, key, std::max(left, std::chrono::milliseconds(1)));
    } catch (const control::EnrollError& e) {
      const auto jitter = std::chrono::milliseconds(rng.next_u32() % (pause.count() / 2 + 1));
      if (e.code() != "busy" || Clock::now() + pause + jitter >= end)
        throw;
      std::this_thread::sleep_for(pause + jitter);
      pause = std::min(pause * 2, std::chrono::milliseconds(4000));
    }
  }
}

}  // namespace

ClientConfig join(const std::string& invite_text, const JoinOptions& o, RandomSource& rng,
                  std::string* warning) {
  if (!valid_interface_name(o.interface))
    throw std::runtime_error("'" + o.interface +
                             "' is not a valid interface name (1-15 of a-z A-Z 0-9 _ = + . -)");
  auto invite = control::parse_invite(invite_text);
  if (!invite.ok())
    throw std::runtime_error("bad invite: " + invite.message());
  if (auto st = platform::make_directory(o.config_dir, 0700); !st)
    throw file_error("create directory", o.config_dir, st.error());
  // Root writes the key and the config there: a directory someone else can write could have a
  // link planted in it.
  if (auto st = platform::check_trusted_directory(o.config_dir); !st)
    throw std::runtime_error(st.message());
  const std::string base = o.config_dir + "/" + o.interface;
  const crypto::PrivateKey key = load_or_create_key(base + ".key", rng, warning);
  control::Enrollment e = enroll_retrying_busy(*invite, o.client_name, key, o.timeout, rng);
  ClientConfig c = config_from_enrollment(e, key, o.interface, invite->control_endpoint);
  c.control_pin = control::fingerprint_to_hex(invite->fingerprint);
  const std::string path = base + ".conf";
  std::string text = "# written by `warren join` for " + e.name +
                     "; a wg-quick file (wg-quick up " + path + " works too)\n" + format_config(c);
  write_private_file(path, text);
  secure_zero(text.data(), text.size());
  ClientConfig loaded = parse_config(format_config(c), path);  // what `warren up` will read
  return loaded;
}

}  // namespace warren::client
