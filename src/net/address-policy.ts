// Which network addresses outgoing HTTP may reach (SSRF protection). Pure.
//
// Allowed: global unicast IPv4 and IPv6 addresses, plus anything inside an operator-configured CIDR
// (HERALD_ALLOW_NETWORKS). Refused: loopback, private (RFC 1918), unique-local, link-local (which
// includes cloud metadata at 169.254.169.254), CGNAT (100.64/10), multicast, broadcast, unspecified,
// reserved and documentation ranges, and IPv6 transition forms (6to4, Teredo, NAT64) that can
// smuggle an IPv4 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it maps.

import ipaddr from 'ipaddr.js';

export interface Cidr {
  readonly text: string;
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

export function parseCidrList(s: string): Cidr[] {
  return s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .map((text) => {
      try {
        const withPrefix = text.includes('/') ? text : `${text}/${ipaddr.parse(text).kind() === 'ipv4' ? 32 : 128}`;
        const [addr, bits] = ipaddr.parseCIDR(withPrefix);
        return { text, range: [canonical(addr), addr.kind() === 'ipv6' && canonical(addr).kind() === 'ipv4' ? bits - 96 : bits] as Cidr['range'] };
      } catch {
        throw new Error(`not a CIDR: "${text}" (expected e.g. 10.0.0.0/8 or fd00::/8)`);
      }
    });
}

function canonical(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return (addr as ipaddr.IPv6).toIPv4Address();
  return addr;
}

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

const DOCUMENTATION_V4: [string, number][] = [['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24], ['198.18.0.0', 15], ['192.0.0.0', 24]];
const PARSED_DOC_V4 = DOCUMENTATION_V4.map(([a, b]) => [ipaddr.IPv4.parse(a), b] as [ipaddr.IPv4, number]);
const DOCUMENTATION_V6 = ipaddr.parseCIDR('2001:db8::/32') as [ipaddr.IPv6, number];

/** Judges one literal IP address (as resolved by DNS) against the policy. */
export function checkAddress(ip: string, allow: readonly Cidr[]): AddressVerdict {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = canonical(ipaddr.parse(ip));
  } catch {
    return { allowed: false, reason: `not an IP address: ${ip}` };
  }
  for (const c of allow) {
    if (c.range[0].kind() === addr.kind() && addr.match(c.range as never)) return { allowed: true };
  }
  const range = addr.range();
  if (range !== 'unicast') return { allowed: false, reason: `${ip} is a ${range} address` };
  if (addr.kind() === 'ipv4' && PARSED_DOC_V4.some((r) => addr.match(r))) return { allowed: false, reason: `${ip} is a reserved address` };
  if (addr.kind() === 'ipv6' && addr.match(DOCUMENTATION_V6)) return { allowed: false, reason: `${ip} is a documentation address` };
  return { allowed: true };
}
