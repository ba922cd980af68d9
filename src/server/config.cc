// TOML server configuration (see config.h).

#include "server/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "control/tls.h"
#include "dns/message.h"
#include "platform/files.h"
#include "platform/log.h"

namespace warren::server {
namespace {

class Parser {
 public:
  explicit Parser(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const toml::source_region& where, std::string_view key,
                         const std::string& message) const {
    std::string pos = path_;
    if (where.begin.line > 0)
      pos += ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
    throw ConfigError(pos + ": " + std::string(key) + ": " + message);
  }
  [[noreturn]] void fail(const toml::node& n, std::string_view key, const std::string& m) const {
    fail(n.source(), key, m);
  }

  /// Refuses keys of `t` that are not in `allowed`.
  void only(const toml::table& t, std::string_view prefix,
            std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end()) {
        std::string full = prefix.empty() ? std::string(k.str())
                                          : std::string(prefix) + "." + std::string(k.str());
        fail(k.source(), full, "unknown key");
      }
    }
  }

  const toml::table* table(const toml::table& root, std::string_view name) const {
    const toml::node* n = root.get(name);
    if (!n)
      return nullptr;
    if (!n->is_table())
      fail(*n, name, "must be a table");
    return n->as_table();
  }

  /// The value of `key` in `t` as a T (toml++'s native types), nullopt when absent; any
  /// other type fails with "tname.key: <must>". Every typed getter below goes through it.
  template <typename T>
  std::optional<T> typed(const toml::table* t, std::string_view tname, std::string_view key,
                         const char* must, const toml::node** where = nullptr) const {
    if (!t)
      return std::nullopt;
    const toml::node* n = t->get(key);
    if (!n)
      return std::nullopt;
    const auto* v = n->as<T>();
    if (!v)
      fail(*n, full(tname, key), must);
    if (where)
      *where = n;
    return v->get();
  }

  std::optional<std::string> string(const toml::table* t, std::string_view tname,
                                    std::string_view key) const {
    return typed<std::string>(t, tname, key, "must be a string");
  }

  std::optional<std::int64_t> integer(const toml::table* t, std::string_view tname,
                                      std::string_view key, std::int64_t lo,
                                      std::int64_t hi) const {
    const toml::node* n = nullptr;
    const auto got = typed<std::int64_t>(t, tname, key, "must be an integer", &n);
    if (!got)
      return std::nullopt;
    const std::int64_t v = *got;
    if (v < lo || v > hi)
      fail(*n, full(tname, key),
           "must be " + std::to_string(lo) + ".." + std::to_string(hi) + " (got " +
               std::to_string(v) + ")");
    return v;
  }

  std::optional<bool> boolean(const toml::table* t, std::string_view tname,
                              std::string_view key) const {
    return typed<bool>(t, tname, key, "must be true or false");
  }

  /// An array of strings, each converted by `conv` (nullopt = bad element, with `what`).
  template <typename T, typename F>
  std::optional<std::vector<T>> list(const toml::table* t, std::string_view tname,
                                     std::string_view key, const char* what, F conv) const {
    if (!t)
      return std::nullopt;
    const toml::node* n = t->get(key);
    if (!n)
      return std::nullopt;
    if (!n->is_array())
      fail(*n, full(tname, key), std::string("must be a list of ") + what);
    std::vector<T> out;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string())
        fail(e, full(tname, key), std::string("must be a list of ") + what);
      std::optional<T> v = conv(e.as_string()->get());
      if (!v)
        fail(e, full(tname, key), "'" + e.as_string()->get() + "' is not " + what);
      out.push_back(*v);
    }
    return out;
  }

  /// One string or a list of strings (at least one), each converted by `conv` (nullopt = bad
  /// element, named in the error with `what`); nullopt when absent.
  template <typename F>
  std::optional<std::vector<std::string>> one_or_list(const toml::table* t, std::string_view tname,
                                                      std::string_view key, const char* what,
                                                      F check) const {
    if (!t)
      return std::nullopt;
    const toml::node* n = t->get(key);
    if (!n)
      return std::nullopt;
    std::vector<const toml::node*> items;
    if (n->is_string()) {
      items.push_back(n);
    } else if (n->is_array() && !n->as_array()->empty()) {
      for (const toml::node& e : *n->as_array())
        items.push_back(&e);
    } else {
      fail(*n, full(tname, key), std::string("must be ") + what + " or a list of them");
    }
    std::vector<std::string> out;
    for (const toml::node* e : items) {
      if (!e->is_string())
        fail(*e, full(tname, key), std::string("must be ") + what + " or a list of them");
      const std::string v = e->as_string()->get();
      check(*e, v);
      if (std::find(out.begin(), out.end(), v) != out.end())
        fail(*e, full(tname, key), "'" + v + "' is listed twice");
      out.push_back(v);
    }
    return out;
  }

  const toml::node* node(const toml::table* t, std::string_view key) const {
    return t ? t->get(key) : nullptr;
  }

  static std::string full(std::string_view t, std::string_view k) {
    return std::string(t) + "." + std::string(k);
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

std::string resolve(const std::string& dir, const std::string& name) {
  if (!name.empty() && name[0] == '/')
    return name;
  return dir + "/" + name;
}

bool valid_ifname(std::string_view n) {
  return !n.empty() && n.size() <= 15 && n != "." && n != ".." &&
         std::all_of(n.begin(), n.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

// Two addresses of one list that cannot both be bound: "[::]:P" takes IPv4 port P too, so
// "0.0.0.0:P" or "192.0.2.1:P" beside it would fail at start.
void check_overlaps(const Parser& p, const toml::node& where, const char* key,
                    const std::vector<std::string>& list) {
  for (const auto& a : list) {
    auto ha = control::split_host_port(a);
    if (!ha || ha->host != "::")
      continue;
    for (const auto& b : list) {
      auto hb = control::split_host_port(b);
      if (hb && hb->port == ha->port && net::IpAddress::parse(hb->host) &&
          net::IpAddress::parse(hb->host)->is_v4())
        p.fail(where, key,
               "'" + b + "' overlaps '" + a + "', which listens on IPv4 too (drop one of them)");
    }
  }
}

}  // namespace

const char* strategy_name(PoolStrategy s) {
  switch (s) {
    case PoolStrategy::kDynamic:
      return "dynamic";
    case PoolStrategy::kStatic:
      return "static";
    case PoolStrategy::kStaticOrDynamic:
      return "static-or-dynamic";
  }
  return "?";
}

std::string ServerConfig::database_dir() const {
  return dir_of(database);
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text == "0")
    return std::chrono::seconds(0);
  if (text.size() < 2)
    return std::nullopt;
  char unit = text.back();
  std::string_view num = text.substr(0, text.size() - 1);
  std::int64_t mult = 0;
  switch (unit) {
    case 's':
      mult = 1;
      break;
    case 'm':
      mult = 60;
      break;
    case 'h':
      mult = 3600;
      break;
    case 'd':
      mult = 86400;
      break;
    case 'w':
      mult = 7 * 86400;
      break;
    default:
      return std::nullopt;
  }
  if (num.empty() || num.size() > 9)
    return std::nullopt;
  std::int64_t v = 0;
  for (char c : num) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return std::chrono::seconds(v * mult);
}

bool valid_client_name(std::string_view n) {
  return !n.empty() && n.size() <= 32 && n.front() != '-' && n.front() != '.' &&
         std::all_of(n.begin(), n.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

ServerConfig parse_config(std::string_view text, const std::string& path) {
  Parser p(path);
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) +
                      ": syntax error: " + std::string(e.description()));
  }
  ServerConfig c;
  c.path = path;
  c.directory = dir_of(path);

  p.only(root, "",
         {"interface", "pool", "clients", "nat", "enrollment", "metrics", "storage", "mesh", "log",
          "dns", "quic"});

  // [interface]
  const toml::table* itf = p.table(root, "interface");
  if (!itf)
    p.fail(toml::source_region{}, "interface", "missing table [interface]");
  p.only(*itf, "interface",
         {"name", "listen_port", "private_key_file", "address_v4", "address_v6", "mtu"});
  if (auto v = p.string(itf, "interface", "name")) {
    if (!valid_ifname(*v))
      p.fail(*p.node(itf, "name"), "interface.name",
             "'" + *v + "' is not an interface name (1-15 of A-Z a-z 0-9 . - _)");
    c.interface = *v;
  }
  if (auto v = p.integer(itf, "interface", "listen_port", 1, 65535))
    c.listen_port = static_cast<std::uint16_t>(*v);
  if (auto v = p.integer(itf, "interface", "mtu", 1280, 9000))
    c.mtu = static_cast<std::uint32_t>(*v);
  c.private_key_file = resolve(
      c.directory, p.string(itf, "interface", "private_key_file").value_or(c.interface + ".key"));
  for (const char* key : {"address_v4", "address_v6"}) {
    auto v = p.string(itf, "interface", key);
    if (!v)
      continue;
    const bool want_v4 = key == std::string_view("address_v4");
    const toml::node& n = *p.node(itf, key);
    auto pre = net::Prefix::parse(*v);
    if (!pre || v->find('/') == std::string::npos || pre->address.is_v4() != want_v4)
      p.fail(n, std::string("interface.") + key,
             "'" + *v + "' must be the server's " + (want_v4 ? "IPv4" : "IPv6") +
                 " address with the tunnel prefix length, e.g. " +
                 (want_v4 ? "10.8.0.1/24" : "fd00:8::1/64"));
    const unsigned max = pre->max_length();
    if (pre->length + 2u > max || pre->length < (want_v4 ? 8u : 16u))
      p.fail(n, std::string("interface.") + key,
             "prefix length /" + std::to_string(pre->length) + " leaves no room for clients");
    TunnelNetwork tn{pre->canonical(), pre->address};
    if (tn.server_address == tn.prefix.address)
      p.fail(n, std::string("interface.") + key,
             "the server's address cannot be the network address " + tn.prefix.to_string());
    (want_v4 ? c.ipv4 : c.ipv6) = tn;
  }
  if (!c.ipv4 && !c.ipv6)
    p.fail(itf->source(), "interface.address_v4",
           "at least one of address_v4 and address_v6 is required");

  // [pool]
  const toml::table* pool = p.table(root, "pool");
  if (pool) {
    p.only(*pool, "pool", {"strategy", "lease_idle_time", "quarantine", "reservations"});
    if (auto v = p.string(pool, "pool", "strategy")) {
      if (*v == "dynamic")
        c.strategy = PoolStrategy::kDynamic;
      else if (*v == "static")
        c.strategy = PoolStrategy::kStatic;
      else if (*v == "static-or-dynamic")
        c.strategy = PoolStrategy::kStaticOrDynamic;
      else
        p.fail(*p.node(pool, "strategy"), "pool.strategy",
               "'" + *v + "' is not one of dynamic, static, static-or-dynamic");
    }
    if (auto v = p.string(pool, "pool", "lease_idle_time")) {
      auto d = parse_duration(*v);
      if (!d)
        p.fail(*p.node(pool, "lease_idle_time"), "pool.lease_idle_time",
               "'" + *v + "' is not a duration like 90s, 30m, 24h, 7d or 0 (never)");
      c.lease_idle_time = *d;
    }
    if (auto v = p.string(pool, "pool", "quarantine")) {
      auto d = parse_duration(*v);
      if (!d)
        p.fail(*p.node(pool, "quarantine"), "pool.quarantine",
               "'" + *v + "' is not a duration like 90s, 30m, 1h or 0 (reuse at once)");
      c.address_quarantine = *d;
    }
    if (const toml::node* rn = p.node(pool, "reservations")) {
      if (!rn->is_table())
        p.fail(*rn, "pool.reservations", "must be a table of NAME = [\"address\", ...]");
      std::set<net::IpAddress> seen;
      for (auto&& [k, v] : *rn->as_table()) {
        std::string key = "pool.reservations." + std::string(k.str());
        if (!valid_client_name(k.str()))
          p.fail(k.source(), key, "not a client name (1-32 of A-Z a-z 0-9 . - _)");
        if (!v.is_array())
          p.fail(v, key, "must be a list of addresses");
        std::vector<net::IpAddress> addrs;
        bool has4 = false, has6 = false;
        for (const toml::node& e : *v.as_array()) {
          auto a = e.is_string() ? net::IpAddress::parse(e.as_string()->get()) : std::nullopt;
          if (!a)
            p.fail(e, key, "must be a list of addresses");
          const std::optional<TunnelNetwork>& tn = a->is_v4() ? c.ipv4 : c.ipv6;
          if (!tn || !tn->prefix.contains(*a))
            p.fail(e, key, a->to_string() + " is outside the tunnel prefix");
          if (*a == tn->server_address)
            p.fail(e, key, a->to_string() + " is the server's own address");
          const unsigned hostbits = tn->prefix.max_length() - tn->prefix.length;
          net::IpAddress last = *a;  // broadcast check for IPv4
          if (*a == tn->prefix.address ||
              (a->is_v4() && hostbits >= 2 && a->masked(tn->prefix.length) == tn->prefix.address &&
               [&] {
                 std::uint32_t v4 = 0;
                 for (int i = 0; i < 4; ++i)
                   v4 = v4 << 8 | last.data()[i];
                 std::uint32_t mask = hostbits >= 32 ? 0xffffffffu : ((1u << hostbits) - 1);
                 return (v4 & mask) == mask;
               }()))
            p.fail(e, key, a->to_string() + " is the network or broadcast address");
          if ((a->is_v4() && has4) || (a->is_v6() && has6))
            p.fail(e, key, "at most one IPv4 and one IPv6 address per client");
          (a->is_v4() ? has4 : has6) = true;
          if (!seen.insert(*a).second)
            p.fail(e, key, a->to_string() + " is reserved twice");
          addrs.push_back(*a);
        }
        if (addrs.empty())
          p.fail(v, key, "must list at least one address");
        c.reservations[std::string(k.str())] = addrs;
      }
    }
    if (c.strategy == PoolStrategy::kDynamic && !c.reservations.empty())
      p.fail(*p.node(pool, "reservations"), "pool.reservations",
             "reservations need strategy \"static\" or \"static-or-dynamic\"");
    // A mesh coordinator's clients get key-derived addresses (registry.h, "Mesh mode"): an
    // address chosen by the operator has no place, and must not be silently ignored.
    if (root.get("mesh") && !c.reservations.empty())
      p.fail(*p.node(pool, "reservations"), "pool.reservations",
             "not with [mesh]: a mesh node's addresses follow from its key (docs/MESH.md)");
    if (root.get("mesh") && c.strategy == PoolStrategy::kStatic)
      p.fail(*p.node(pool, "strategy"), "pool.strategy",
             "\"static\" is not with [mesh]: a mesh node's addresses follow from its key");
  }

  // [clients]
  const toml::table* cl = p.table(root, "clients");
  if (cl) {
    p.only(*cl, "clients", {"dns", "routes", "persistent_keepalive", "client_to_client"});
    if (auto v =
            p.list<net::IpAddress>(cl, "clients", "dns", "an IP address",
                                   [](const std::string& s) { return net::IpAddress::parse(s); }))
      c.dns = *v;
    if (auto v = p.list<net::Prefix>(cl, "clients", "routes", "a prefix like 10.0.0.0/8",
                                     [](const std::string& s) -> std::optional<net::Prefix> {
                                       auto pre = net::Prefix::parse(s);
                                       if (pre)
                                         return pre->canonical();
                                       return std::nullopt;
                                     }))
      c.routes = *v;
    if (auto v = p.integer(cl, "clients", "persistent_keepalive", 0, 65535))
      c.persistent_keepalive = static_cast<std::uint16_t>(*v);
    if (auto v = p.boolean(cl, "clients", "client_to_client"))
      c.client_to_client = *v;
  }
  if (!cl || !cl->get("routes")) {
    if (c.ipv4)
      c.routes.push_back(c.ipv4->prefix);
    if (c.ipv6)
      c.routes.push_back(c.ipv6->prefix);
  }

  // [nat]
  if (const toml::table* nat = p.table(root, "nat")) {
    p.only(*nat, "nat", {"out_interface", "ipv6"});
    c.nat = true;
    if (auto v = p.string(nat, "nat", "out_interface")) {
      if (!valid_ifname(*v))
        p.fail(*p.node(nat, "out_interface"), "nat.out_interface",
               "'" + *v + "' is not an interface name");
      if (*v == c.interface)
        p.fail(*p.node(nat, "out_interface"), "nat.out_interface",
               "'" + *v + "' is the tunnel itself (name the interface towards the internet)");
      c.nat_interface = *v;
    }
    if (auto v = p.string(nat, "nat", "ipv6")) {
      if (*v == "masquerade")
        c.nat_ipv6 = Ipv6Egress::kMasquerade;
      else if (*v == "routed")
        c.nat_ipv6 = Ipv6Egress::kRouted;
      else
        p.fail(*p.node(nat, "ipv6"), "nat.ipv6",
               "must be \"masquerade\" (NAT66) or \"routed\" (got '" + *v + "')");
      if (!c.ipv6)
        p.fail(*p.node(nat, "ipv6"), "nat.ipv6", "needs interface.address_v6");
      // Routed means the clients' own addresses appear on the internet: a unique-local
      // (fc00::/7) or other non-global prefix would never get an answer back.
      const auto first = c.ipv6->prefix.address.data()[0];
      if (c.nat_ipv6 == Ipv6Egress::kRouted && (first & 0xe0) != 0x20)
        p.fail(*p.node(nat, "ipv6"), "nat.ipv6",
               "\"routed\" needs a global prefix in interface.address_v6 (2000::/3; " +
                   c.ipv6->prefix.to_string() +
                   " is not routed on the internet): use \"masquerade\"");
    }
  }

  // [enrollment]
  const toml::table* en = p.table(root, "enrollment");
  if (!en)
    p.fail(toml::source_region{}, "enrollment",
           "missing table [enrollment] (public_endpoint is required)");
  p.only(*en, "enrollment", {"listen", "public_endpoint", "control_endpoint"});
  if (auto v = p.one_or_list(en, "enrollment", "listen", "an address:port",
                             [&](const toml::node& n, const std::string& a) {
                               auto hp = control::split_host_port(a);
                               if (!hp || !net::IpAddress::parse(hp->host))
                                 p.fail(n, "enrollment.listen",
                                        "'" + a +
                                            "' is not address:port, e.g. 0.0.0.0:7443 or "
                                            "[::]:7443");
                             })) {
    check_overlaps(p, *p.node(en, "listen"), "enrollment.listen", *v);
    c.control_listen = *v;
  }
  auto pub = p.string(en, "enrollment", "public_endpoint");
  if (!pub)
    p.fail(en->source(), "enrollment.public_endpoint",
           "missing (the host:port clients send WireGuard traffic to)");
  if (!control::split_host_port(*pub))
    p.fail(*p.node(en, "public_endpoint"), "enrollment.public_endpoint",
           "'" + *pub + "' is not host:port");
  c.public_endpoint = *pub;
  if (auto v = p.string(en, "enrollment", "control_endpoint")) {
    if (!control::split_host_port(*v))
      p.fail(*p.node(en, "control_endpoint"), "enrollment.control_endpoint",
             "'" + *v + "' is not host:port");
    c.control_endpoint = *v;
  } else {
    auto host = control::split_host_port(c.public_endpoint)->host;
    if (host.find(':') != std::string::npos)
      host = "[" + host + "]";
    c.control_endpoint =
        host + ":" + std::to_string(control::split_host_port(c.control_listen.front())->port);
  }

  // [metrics]
  if (const toml::table* m = p.table(root, "metrics")) {
    p.only(*m, "metrics", {"listen", "allow_remote"});
    c.metrics_allow_remote = p.boolean(m, "metrics", "allow_remote").value_or(false);
    if (auto v = p.one_or_list(
            m, "metrics", "listen", "an address:port",
            [&](const toml::node& n, const std::string& a) {
              auto hp = control::split_host_port(a);
              auto addr = hp ? net::IpAddress::parse(hp->host) : std::nullopt;
              if (!addr)
                p.fail(n, "metrics.listen", "'" + a + "' is not address:port");
              if (!addr->is_loopback() && !c.metrics_allow_remote)
                p.fail(n, "metrics.listen",
                       "'" + a +
                           "' is not a loopback address: the endpoint is unauthenticated plain "
                           "HTTP naming every client; set allow_remote = true to serve it there "
                           "anyway");
            })) {
      check_overlaps(p, *p.node(m, "listen"), "metrics.listen", *v);
      c.metrics_listen = *v;
    }
  }

  // [mesh]
  if (const toml::table* m = p.table(root, "mesh")) {
    p.only(*m, "mesh",
           {"prefix_v4", "prefix_v6", "domain", "stun_port", "stun_alternate_port", "relay_port",
            "relay_rate", "relay_frame_rate", "relay_connections_per_source"});
    c.mesh = true;
    {
      net::Prefix v4 = c.mesh_plan.v4_prefix(), v6 = c.mesh_plan.v6_prefix();
      const toml::node* where = nullptr;
      for (const char* key : {"prefix_v4", "prefix_v6"}) {
        const toml::node* n = nullptr;
        if (auto v = p.typed<std::string>(m, "mesh", key, "must be a string", &n)) {
          auto prefix = net::Prefix::parse(*v);
          if (!prefix)
            p.fail(*n, std::string("mesh.") + key, "'" + *v + "' is not a prefix (ADDRESS/LENGTH)");
          (std::string_view(key) == "prefix_v4" ? v4 : v6) = *prefix;
          where = n;
        }
      }
      auto plan = mesh::AddressPlan::create(v4, v6);
      if (!plan.ok()) {
        // Name the key whose prefix broke the plan's rule (the message names the prefix too).
        const bool v4_bad = !mesh::AddressPlan::create(v4, c.mesh_plan.v6_prefix()).ok();
        const char* key = v4_bad ? "prefix_v4" : "prefix_v6";
        const toml::node* n = m->get(key) ? m->get(key) : where;
        p.fail(*n, std::string("mesh.") + key, plan.message());
      }
      c.mesh_plan = *plan;
    }
    {
      const toml::node* n = nullptr;
      if (auto v = p.typed<std::string>(m, "mesh", "domain", "must be a string", &n)) {
        auto domain = mesh::canonical_mesh_domain(*v);
        if (!domain.ok())
          p.fail(*n, "mesh.domain", domain.message());
        c.mesh_domain = *domain;
      }
    }
    if (auto v = p.integer(m, "mesh", "stun_port", 1, 65535)) {
      if (*v == c.listen_port)
        p.fail(*p.node(m, "stun_port"), "mesh.stun_port",
               "must differ from interface.listen_port (STUN for nodes goes to its own port)");
      c.stun_port = static_cast<std::uint16_t>(*v);
    }
    if (auto v = p.integer(m, "mesh", "stun_alternate_port", 1, 65535)) {
      if (!c.stun_port)
        p.fail(*p.node(m, "stun_alternate_port"), "mesh.stun_alternate_port",
               "needs mesh.stun_port");
      if (*v == *c.stun_port || *v == c.listen_port)
        p.fail(*p.node(m, "stun_alternate_port"), "mesh.stun_alternate_port",
               "must differ from mesh.stun_port and interface.listen_port");
      c.stun_alternate_port = static_cast<std::uint16_t>(*v);
    }
    // The relay (TCP/TLS; server/relay_service.h).
    if (auto v = p.integer(m, "mesh", "relay_port", 0, 65535)) {
      const bool enrollment_port =
          std::any_of(c.control_listen.begin(), c.control_listen.end(), [&](const auto& l) {
            const auto control = control::split_host_port(l);
            return control && control->port == *v;
          });
      if (*v != 0 && enrollment_port)
        p.fail(*p.node(m, "relay_port"), "mesh.relay_port",
               "must differ from the enrollment port (enrollment.listen)");
      if (*v != 0 && (*v == c.listen_port || (c.stun_port && *v == *c.stun_port) ||
                      (c.stun_alternate_port && *v == *c.stun_alternate_port)))
        p.fail(*p.node(m, "relay_port"), "mesh.relay_port",
               "must differ from interface.listen_port and the STUN ports (the relay also "
               "uses it over UDP)");
      c.relay_port = static_cast<std::uint16_t>(*v);
    }
    if (auto v = p.integer(m, "mesh", "relay_rate", 0, std::int64_t{1} << 40))
      c.relay_rate = static_cast<std::uint64_t>(*v);
    if (auto v = p.integer(m, "mesh", "relay_frame_rate", 0, 10'000'000))
      c.relay_frame_rate = static_cast<std::uint64_t>(*v);
    if (auto v = p.integer(m, "mesh", "relay_connections_per_source", 1, 65535))
      c.relay_connections_per_source = static_cast<std::size_t>(*v);
  }

  // [quic]: the QUIC transport's UDP listener(s). Its port must not be one of the server's
  // other UDP ports (WireGuard, STUN, the relay's UDP side), which bind every address.
  if (const toml::table* q = p.table(root, "quic")) {
    p.only(*q, "quic", {"listen"});
    const toml::node* where = p.node(q, "listen");
    if (!where)
      p.fail(q->source(), "quic.listen",
             "missing (the UDP address:port of the QUIC listener, e.g. \"0.0.0.0:443\")");
    std::optional<std::uint16_t> first_port;
    auto v = p.one_or_list(
        q, "quic", "listen", "an address:port", [&](const toml::node& n, const std::string& a) {
          auto hp = control::split_host_port(a);
          if (!hp || !net::IpAddress::parse(hp->host))
            p.fail(n, "quic.listen",
                   "'" + a + "' is not address:port, e.g. 0.0.0.0:443 or [::]:443");
          const std::uint16_t port = hp->port;
          // The transport opens its port on every address of both families (one IPv4 and one
          // v6-only IPv6 socket, like WireGuard's): a single address cannot be honoured yet,
          // so only the two wildcard forms of one port are accepted.
          if (!net::IpAddress::parse(hp->host)->is_unspecified())
            p.fail(n, "quic.listen",
                   "'" + a + "': only 0.0.0.0:PORT and [::]:PORT are supported (the QUIC port "
                             "is opened on every address)");
          if (first_port && port != *first_port)
            p.fail(n, "quic.listen", "'" + a + "': every entry must name the same port");
          first_port = port;
          if (port == c.listen_port)
            p.fail(n, "quic.listen",
                   "'" + a +
                       "': the port must differ from interface.listen_port (WireGuard's UDP "
                       "port)");
          if ((c.stun_port && port == *c.stun_port) ||
              (c.stun_alternate_port && port == *c.stun_alternate_port) ||
              (c.relay_port != 0 && port == c.relay_port))
            p.fail(n, "quic.listen",
                   "'" + a + "': the port must differ from the mesh STUN and relay ports");
        });
    c.quic_listen = *v;
  }

  // [log]
  if (const toml::table* lg = p.table(root, "log")) {
    p.only(*lg, "log", {"level"});
    if (auto v = p.string(lg, "log", "level")) {
      if (!platform::parse_log_level(*v))
        p.fail(*p.node(lg, "level"), "log.level",
               "'" + *v + "' is not one of error, verbose, debug, silent");
      c.log_level = *v;
    }
  }

  // [storage]
  const toml::table* st = p.table(root, "storage");
  if (st)
    p.only(*st, "storage", {"database"});
  std::string stem = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (auto dot = stem.rfind('.'); dot != std::string::npos && dot > 0)
    stem.resize(dot);
  c.database = resolve(c.directory, p.string(st, "storage", "database").value_or(stem + ".db"));

  // [dns]: the resolver on the tunnel address(es) (server/dns_service.h, docs/SERVER.md).
  for (const auto& tn : {c.ipv4, c.ipv6})
    if (tn && std::find(c.dns.begin(), c.dns.end(), tn->server_address) != c.dns.end())
      c.dns_enabled = true;
  if (const toml::table* d = p.table(root, "dns")) {
    p.only(*d, "dns", {"enabled", "domain", "upstreams"});
    if (auto v = p.boolean(d, "dns", "enabled")) {
      c.dns_enabled = *v;
      c.dns_required = *v;
    }
    if (auto v = p.string(d, "dns", "domain")) {
      auto domain = dns::canonical_domain(*v, "domain");
      if (!domain)
        p.fail(*p.node(d, "domain"), "dns.domain", domain.message());
      c.dns_domain = *domain;
    }
    if (auto v = p.list<net::Endpoint>(d, "dns", "upstreams",
                                       "an address or address:port (port 53 by default)",
                                       [](const std::string& s) -> std::optional<net::Endpoint> {
                                         if (auto a = net::IpAddress::parse(s))
                                           return net::Endpoint{*a, 53};
                                         auto e = net::Endpoint::parse(s);
                                         if (e && e->valid())
                                           return e;
                                         return std::nullopt;
                                       })) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        for (const auto& tn : {c.ipv4, c.ipv6})
          if (tn && (*v)[i].address == tn->server_address)
            p.fail(*p.node(d, "upstreams")->as_array()->get(i), "dns.upstreams",
                   (*v)[i].address.to_string() +
                       " is the server's own tunnel address (it would forward to itself)");
      }
      c.dns_upstreams = *v;
    }
  }
  return c;
}

ServerConfig load_config(const std::string& path) {
  auto text = platform::read_file(path);
  if (!text)
    throw ConfigError(path + ": cannot read the config file: " + text.message());
  return parse_config(*text, path);
}

}  // namespace warren::server
