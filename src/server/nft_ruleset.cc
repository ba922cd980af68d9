// The server's nftables table (see nft_ruleset.h).
#include "server/nft_ruleset.h"

namespace warren::server {

std::string nft_table_name(const ServerConfig& c) {
  return "warren_" + c.interface;
}

std::string nft_table_definition(const ServerConfig& c) {
  const std::string tun = "\"" + c.interface + "\"";
  // Masquerade what leaves by any interface but the tunnel (client-to-client traffic goes
  // back into it and keeps its addresses), or only by the configured one.
  const std::string out =
      c.nat_interface ? "oifname \"" + *c.nat_interface + "\"" : "oifname != " + tun;
  std::string t = std::string("table ") + kNftFamily + " " + nft_table_name(c) + " {\n";
  t += "\tchain forward {\n";
  t += "\t\ttype filter hook forward priority filter; policy accept;\n";
  t += "\t\tiifname " + tun + " counter accept\n";
  t += "\t\toifname " + tun + " ct state established,related counter accept\n";
  t += "\t}\n";
  t += "\tchain postrouting {\n";
  t += "\t\ttype nat hook postrouting priority srcnat; policy accept;\n";
  if (c.ipv4)
    t += "\t\tip saddr " + c.ipv4->prefix.to_string() + " " + out + " counter masquerade\n";
  if (c.ipv6 && c.nat_ipv6 == Ipv6Egress::kMasquerade)
    t += "\t\tip6 saddr " + c.ipv6->prefix.to_string() + " " + out + " counter masquerade\n";
  t += "\t}\n";
  t += "}\n";
  return t;
}

}  // namespace warren::server
