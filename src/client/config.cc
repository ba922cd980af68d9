#include "client/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

#include "base/secure.h"
#include "platform/files.h"

namespace warren::client {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split_list(std::string_view v) {
  std::vector<std::string_view> out;
  while (true) {
    auto comma = v.find(',');
    out.push_back(trim(v.substr(0, comma)));
    if (comma == std::string_view::npos)
      break;
    v.remove_prefix(comma + 1);
  }
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view v, T max) {
  int base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    base = 16;
    v.remove_prefix(2);
  }
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n, base);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n > max)
    return std::nullopt;
  return static_cast<T>(n);
}

bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 253)
    return false;
  return std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

class Parser {
 public:
  Parser(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    std::string m = path_ + (line_ ? ":" + std::to_string(line_) : std::string()) + ": ";
    if (!key.empty())
      m += std::string(key) + ": ";
    throw ConfigError(m + what);
  }

  ClientConfig parse(std::string_view text) {
    ClientConfig c;
    c.path = path_;
    enum class Section { kNone, kInterface, kPeer } section = Section::kNone;
    bool have_interface = false;
    std::set<std::string> seen;  // single-valued keys in the current section
    std::size_t pos = 0;
    while (pos <= text.size()) {
      auto nl = text.find('\n', pos);
      std::string_view raw =
          text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
      ++line_;
      std::string_view t = trim(raw);
      if (t.rfind("#@warren", 0) == 0) {
        warren_directive(c, trim(t.substr(8)));
        continue;
      }
      if (auto hash = t.find('#'); hash != std::string_view::npos)
        t = trim(t.substr(0, hash));
      if (t.empty())
        continue;
      if (t.front() == '[') {
        std::string name = lower(t);
        if (name == "[interface]") {
          if (have_interface)
            fail("[Interface]", "a second [Interface] section");
          have_interface = true;
          interface_line_ = line_;
          section = Section::kInterface;
        } else if (name == "[peer]") {
          section = Section::kPeer;
          c.peers.emplace_back();
          peer_lines_.push_back(line_);
        } else {
          fail(t, "unknown section (expected [Interface] or [Peer])");
        }
        seen.clear();
        continue;
      }
      auto eq = t.find('=');
      if (eq == std::string_view::npos)
        fail(t, "expected 'Key = Value'");
      std::string_view key = trim(t.substr(0, eq));
      std::string_view value = trim(t.substr(eq + 1));
      std::string k = lower(key);
      if (section == Section::kNone)
        fail(key, "key outside a section (put it under [Interface] or [Peer])");
      const bool multi = k == "address" || k == "dns" || k == "allowedips";
      if (!multi && !seen.insert(k).second)
        fail(key, "given twice in this section");
      if (value.empty() && k != "allowedips")
        fail(key, "empty value");
      if (section == Section::kInterface)
        interface_key(c, key, k, value);
      else
        peer_key(c.peers.back(), key, k, value);
    }
    finish_mesh(c);
    if (c.transport == Transport::kQuic && !c.quic_endpoint) {
      line_ = transport_line_;
      fail("Transport",
           "quic needs a #@warren QuicEndpoint (the server's QUIC host:port; "
           "warren join writes it when the server offers QUIC)");
    }
    line_ = 0;
    if (!have_interface)
      fail("[Interface]", "missing (every config needs one, with a PrivateKey)");
    line_ = interface_line_;
    if (c.private_key.is_zero())
      fail("PrivateKey", "missing in [Interface]");
    std::set<crypto::PublicKey> keys;
    for (std::size_t i = 0; i < c.peers.size(); ++i) {
      line_ = peer_lines_[i];
      if (c.peers[i].public_key.is_zero())
        fail("PublicKey", "missing in this [Peer]");
      if (!keys.insert(c.peers[i].public_key).second)
        fail("PublicKey", "the same peer appears twice");
    }
    return c;
  }

 private:
  void warren_directive(ClientConfig& c, std::string_view rest) {
    auto eq = rest.find('=');
    if (eq == std::string_view::npos)
      fail("#@warren", "expected '#@warren Key = Value'");
    std::string_view key = trim(rest.substr(0, eq));
    std::string_view value = trim(rest.substr(eq + 1));
    if (lower(key) == "server") {
      c.server_name = std::string(value);
      return;
    }
    if (lower(key) == "controlpin") {
      const bool hex = value.size() == 64 && std::all_of(value.begin(), value.end(), [](char ch) {
                         return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
                       });
      if (!hex)
        fail(key, "not 64 lowercase hex digits (the SHA-256 of the server's certificate)");
      c.control_pin = std::string(value);
      return;
    }
    if (lower(key) == "controlgroup") {
      const bool name_ok = !value.empty() && value.size() <= 32 && value[0] != '-' &&
                           std::all_of(value.begin(), value.end(), [](char ch) {
                             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                                    ch == '.' || ch == '-';
                           });
      if (!name_ok)
        fail(key, "not a group name (1-32 of [A-Za-z0-9_.-], not starting with '-')");
      c.control_group = std::string(value);
      return;
    }
    if (lower(key) == "quicendpoint") {
      if (quic_endpoint_line_)
        fail(key, "given twice");
      quic_endpoint_line_ = line_;
      auto hp = parse_host_port(value);
      if (!hp || hp->port == 0)
        fail(key, "'" + std::string(value) + "' is not host:port ([v6]:port for IPv6)");
      c.quic_endpoint = *hp;
      return;
    }
    if (lower(key) == "transport") {
      if (transport_line_)
        fail(key, "given twice");
      transport_line_ = line_;
      auto t = parse_transport(value);
      if (!t)
        fail(key, "'" + std::string(value) + "' is not auto, wireguard or quic");
      c.transport = *t;
      return;
    }
    if (lower(key).rfind("mesh", 0) == 0) {
      mesh_directive(key, lower(key), value);
      return;
    }
    fail(key,
         "unknown #@warren setting (supported: Server, ControlPin, ControlGroup, "
         "QuicEndpoint, Transport, MeshPrefix4, MeshPrefix6, MeshDomain, MeshIndex, "
         "MeshStun, MeshRelay, MeshAllowOverlap)");
  }

  // #@warren Mesh* (config.h). Collected in mesh_ and checked as a whole at the end.
  void mesh_directive(std::string_view key, const std::string& k, std::string_view v) {
    if (!mesh_seen_.insert(k).second)
      fail(key, "given twice");
    if (!mesh_line_)
      mesh_line_ = line_;
    if (k == "meshprefix4" || k == "meshprefix6") {
      const bool v4 = k == "meshprefix4";
      auto p = net::Prefix::parse(v);
      if (!p || p->address.is_v4() != v4)
        fail(key, "'" + std::string(v) + "' is not an " + (v4 ? "IPv4" : "IPv6") +
                      " prefix (" + (v4 ? "100.64.0.0/10" : "200::/7 or fdXX:XXXX:XXXX::/48") +
                      ")");
      (v4 ? mesh_.prefix_v4 : mesh_.prefix_v6) = p->canonical();
      (v4 ? have_v4_ : have_v6_) = true;
    } else if (k == "meshdomain") {
      const bool ok = v.size() <= 253 && v.front() != '.' && v.back() != '.' &&
                      std::all_of(v.begin(), v.end(), [](char ch) {
                        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ||
                               ch == '.';
                      });
      if (!ok)
        fail(key, "'" + std::string(v) + "' is not a DNS domain (letters, digits, '-', '.')");
      mesh_.domain = lower(v);
    } else if (k == "meshindex") {
      auto n = parse_number<std::uint32_t>(v, 1024);
      if (!n)
        fail(key, "'" + std::string(v) + "' is not a collision index (0-1024)");
      mesh_.v4_index = *n;
    } else if (k == "meshstun") {
      for (auto item : split_list(v)) {
        auto hp = net::split_host_port(item);
        auto ip = hp ? net::IpAddress::parse(hp->host) : std::nullopt;
        if (!ip || hp->port == 0)
          fail(key, "'" + std::string(item) +
                        "' is not a numeric address:port ([v6]:port for IPv6)");
        mesh_.stun.push_back(net::Endpoint{*ip, hp->port});
      }
    } else if (k == "meshrelay") {
      auto hp = parse_host_port(v);
      if (!hp || hp->port == 0)
        fail(key, "'" + std::string(v) + "' is not host:port ([v6]:port for IPv6)");
      mesh_.relay = *hp;
    } else if (k == "meshallowoverlap") {
      std::string lv = lower(v);
      if (lv != "true" && lv != "false")
        fail(key, "'" + std::string(v) + "' is not true or false");
      mesh_.allow_overlap = lv == "true";
    } else {
      fail(key, "unknown #@warren setting (the mesh ones: MeshPrefix4, MeshPrefix6, "
                "MeshDomain, MeshIndex, MeshStun, MeshRelay, MeshAllowOverlap)");
    }
  }

  void finish_mesh(ClientConfig& c) {
    if (!mesh_line_)
      return;
    line_ = mesh_line_;
    if (!have_v4_ || !have_v6_)
      fail(have_v4_ ? "MeshPrefix6" : "MeshPrefix4",
           "missing: a mesh node's config names both mesh prefixes (join writes them)");
    c.mesh = mesh_;
  }

  void interface_key(ClientConfig& c, std::string_view key, const std::string& k,
                     std::string_view v) {
    if (k == "privatekey") {
      if (!crypto::secret_from_base64(v, c.private_key))
        fail(key, "not a base64 WireGuard key (44 characters, from `wg genkey`)");
    } else if (k == "address") {
      for (auto item : split_list(v)) {
        auto p = net::Prefix::parse(item);
        if (!p || item.empty())
          fail(key, "'" + std::string(item) + "' is not an address (10.0.0.2/24, fd00::2/64)");
        c.addresses.push_back(*p);
      }
    } else if (k == "dns") {
      for (auto item : split_list(v)) {
        if (item.empty())
          fail(key, "empty entry in the list");
        if (auto a = net::IpAddress::parse(item)) {
          c.dns_servers.push_back(*a);
        } else if (valid_hostname(item)) {
          c.dns_search.emplace_back(item);
        } else {
          fail(key, "'" + std::string(item) + "' is neither an address nor a search domain");
        }
      }
    } else if (k == "mtu") {
      auto n = parse_number<std::uint32_t>(v, 65535);
      if (!n || *n < 576)
        fail(key, "'" + std::string(v) + "' is not an MTU (576-65535)");
      c.mtu = *n;
    } else if (k == "listenport") {
      auto n = parse_number<std::uint16_t>(v, 65535);
      if (!n)
        fail(key, "'" + std::string(v) + "' is not a port (0-65535)");
      c.listen_port = *n;
    } else if (k == "fwmark") {
      if (lower(v) == "off") {
        c.fwmark = 0;
      } else {
        auto n = parse_number<std::uint32_t>(v, 0xffffffffu);
        if (!n)
          fail(key, "'" + std::string(v) + "' is not a mark (a number, 0x.. or off)");
        c.fwmark = *n;
      }
    } else if (k == "table") {
      std::string lv = lower(v);
      if (lv == "off") {
        c.table = 0;
      } else if (lv == "auto") {
        c.table.reset();
      } else if (lv == "main") {
        c.table = 254;
      } else {
        auto n = parse_number<std::uint32_t>(v, 0xffffffffu);
        if (!n || *n == 0 || *n == 255 || *n == 253)
          fail(key, "'" + std::string(v) + "' is not a table (off, auto, main or a number)");
        c.table = *n;
      }
    } else if (k == "saveconfig") {
      std::string lv = lower(v);
      if (lv == "true")
        fail(key, "SaveConfig = true is not supported (warren never rewrites your file)");
      if (lv != "false")
        fail(key, "'" + std::string(v) + "' is not true or false");
    } else if (k == "preup" || k == "postup" || k == "predown" || k == "postdown") {
      fail(key,
           "not supported: warren does not run shell commands from config files (run them "
           "before/after `warren up` and `warren down`)");
    } else {
      fail(key, "unknown key in [Interface]");
    }
  }

  void peer_key(PeerConfig& p, std::string_view key, const std::string& k, std::string_view v) {
    if (k == "publickey") {
      auto pk = crypto::PublicKey::from_base64(v);
      if (!pk)
        fail(key, "not a base64 WireGuard key (44 characters, from `wg pubkey`)");
      p.public_key = *pk;
    } else if (k == "presharedkey") {
      crypto::PresharedKey psk;
      if (!crypto::secret_from_base64(v, psk))
        fail(key, "not a base64 key (44 characters, from `wg genpsk`)");
      p.preshared_key = psk;
    } else if (k == "allowedips") {
      if (v.empty())
        return;
      for (auto item : split_list(v)) {
        auto pfx = net::Prefix::parse(item);
        if (!pfx || item.empty())
          fail(key, "'" + std::string(item) + "' is not a prefix (10.0.0.0/24, ::/0)");
        p.allowed_ips.push_back(pfx->canonical());
      }
    } else if (k == "endpoint") {
      auto hp = parse_host_port(v);
      if (!hp)
        fail(key, "'" + std::string(v) + "' is not host:port ([v6]:port for IPv6)");
      p.endpoint = *hp;
    } else if (k == "persistentkeepalive") {
      if (lower(v) == "off") {
        p.persistent_keepalive = 0;
      } else {
        auto n = parse_number<std::uint16_t>(v, 65535);
        if (!n)
          fail(key, "'" + std::string(v) + "' is not a number of seconds (or off)");
        p.persistent_keepalive = *n;
      }
    } else {
      fail(key, "unknown key in [Peer]");
    }
  }

  std::string path_;
  unsigned line_ = 0;
  unsigned interface_line_ = 0;
  std::vector<unsigned> peer_lines_;
  MeshConfig mesh_;
  std::set<std::string> mesh_seen_;
  unsigned mesh_line_ = 0;  // the first Mesh* line
  unsigned quic_endpoint_line_ = 0, transport_line_ = 0;
  bool have_v4_ = false, have_v6_ = false;
};

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
  auto hp = net::split_host_port(text);
  if (!hp)
    return std::nullopt;
  if (text.front() == '[') {
    auto ip = net::IpAddress::parse(hp->host);
    if (!ip || !ip->is_v6())
      return std::nullopt;
  } else if (!valid_hostname(hp->host)) {
    return std::nullopt;
  }
  return hp;
}

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kAuto:
      return "auto";
    case Transport::kWireguard:
      return "wireguard";
    case Transport::kQuic:
      return "quic";
  }
  return "?";
}

std::optional<Transport> parse_transport(std::string_view text) {
  const std::string t = lower(text);
  for (Transport m : {Transport::kAuto, Transport::kWireguard, Transport::kQuic})
    if (t == transport_name(m))
      return m;
  return std::nullopt;
}

Transport effective_transport(const ClientConfig& c) {
  if (!c.quic_endpoint)
    return Transport::kWireguard;
  return c.transport.value_or(Transport::kAuto);
}

bool may_use_quic(const ClientConfig& c) {
  return effective_transport(c) != Transport::kWireguard;
}

bool valid_interface_name(std::string_view name) {
  if (name.empty() || name.size() > 15)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '=' || c == '+' ||
           c == '.' || c == '-';
  });
}

std::string interface_from_path(const std::string& path) {
  // wg-quick: the interface is the file's base name without ".conf".
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.size() < 6 || base.substr(base.size() - 5) != ".conf")
    throw ConfigError(path + ": the file name must be IFNAME.conf (as for wg-quick)");
  std::string name = base.substr(0, base.size() - 5);
  if (!valid_interface_name(name))
    throw ConfigError(path + ": '" + name +
                      "' is not a valid interface name (1-15 of a-z A-Z 0-9 _ = + . -)");
  return name;
}

ClientConfig parse_config(std::string_view text, const std::string& path) {
  std::string name = interface_from_path(path);
  ClientConfig c = Parser(path).parse(text);
  c.interface = name;
  return c;
}

ClientConfig load_config(const std::string& path, std::string* warning) {
  (void)interface_from_path(path);
  auto text = platform::read_file(path);
  if (!text)
    throw ConfigError(path + ": cannot read: " + text.message());
  if (auto info = platform::file_info(path); warning && info && (info->mode & 077))
    *warning = "Warning: " + path +
               " is readable by group or others and holds a private key (chmod 600 it)";
  try {
    ClientConfig c = parse_config(*text, path);
    secure_zero(text->data(), text->size());  // it holds the private key
    return c;
  } catch (...) {
    secure_zero(text->data(), text->size());
    throw;
  }
}

std::string format_config(const ClientConfig& c) {
  std::string out;
  if (!c.server_name.empty())
    out += "#@warren Server = " + c.server_name + "\n";
  if (!c.control_pin.empty())
    out += "#@warren ControlPin = " + c.control_pin + "\n";
  if (!c.control_group.empty())
    out += "#@warren ControlGroup = " + c.control_group + "\n";
  if (c.quic_endpoint)
    out += "#@warren QuicEndpoint = " + c.quic_endpoint->to_string() + "\n";
  if (c.transport)
    out += std::string("#@warren Transport = ") + transport_name(*c.transport) + "\n";
  if (c.mesh) {
    const MeshConfig& m = *c.mesh;
    out += "#@warren MeshPrefix4 = " + m.prefix_v4.to_string() + "\n";
    out += "#@warren MeshPrefix6 = " + m.prefix_v6.to_string() + "\n";
    out += "#@warren MeshDomain = " + m.domain + "\n";
    out += "#@warren MeshIndex = " + std::to_string(m.v4_index) + "\n";
    if (!m.stun.empty()) {
      std::string list;
      for (const auto& e : m.stun)
        list += (list.empty() ? "" : ", ") + e.to_string();
      out += "#@warren MeshStun = " + list + "\n";
    }
    if (m.relay)
      out += "#@warren MeshRelay = " + m.relay->to_string() + "\n";
    if (m.allow_overlap)
      out += "#@warren MeshAllowOverlap = true\n";
  }
  out += "[Interface]\nPrivateKey = " + crypto::secret_to_base64(c.private_key) + "\n";
  auto join = [](const auto& items, auto fmt) {
    std::string s;
    for (const auto& i : items)
      s += (s.empty() ? "" : ", ") + fmt(i);
    return s;
  };
  if (!c.addresses.empty())
    out +=
        "Address = " + join(c.addresses, [](const net::Prefix& p) { return p.to_string(); }) + "\n";
  if (!c.dns_servers.empty() || !c.dns_search.empty()) {
    std::string d = join(c.dns_servers, [](const net::IpAddress& a) { return a.to_string(); });
    for (const auto& s : c.dns_search)
      d += (d.empty() ? "" : ", ") + s;
    out += "DNS = " + d + "\n";
  }
  if (c.mtu)
    out += "MTU = " + std::to_string(*c.mtu) + "\n";
  if (c.listen_port)
    out += "ListenPort = " + std::to_string(*c.listen_port) + "\n";
  if (c.fwmark && *c.fwmark)
    out += "FwMark = " + std::to_string(*c.fwmark) + "\n";
  if (c.table)
    out += "Table = " + (*c.table == 0 ? std::string("off") : std::to_string(*c.table)) + "\n";
  for (const auto& p : c.peers) {
    out += "\n[Peer]\nPublicKey = " + p.public_key.to_base64() + "\n";
    if (p.preshared_key)
      out += "PresharedKey = " + crypto::secret_to_base64(*p.preshared_key) + "\n";
    out +=
        "AllowedIPs = " + join(p.allowed_ips, [](const net::Prefix& x) { return x.to_string(); }) +
        "\n";
    if (p.endpoint)
      out += "Endpoint = " + p.endpoint->to_string() + "\n";
    if (p.persistent_keepalive)
      out += "PersistentKeepalive = " + std::to_string(p.persistent_keepalive) + "\n";
  }
  return out;
}

}  // namespace warren::client
