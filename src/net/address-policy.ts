// Which network addresses outgoing HTTP may reach (SSRF protection). Pure.
//
// Allowed: global unicast IPv4 and IPv6 addresses, plus anything inside an operator-configured CIDR
// (HERALD_ALLOW_NETWORKS). Refused: loopback, private (RFC 1918), unique-local, link-local (which
// includes cloud metadata at 169.254.169.254), CGNAT (100.64/10), multicast, broadcast, unspecified,
// reserved and documentation ranges, and IPv6 transition forms (6to4, Teredo, NAT64, IPv4-compatible
// ::a.b.c.d) that can smuggle an IPv4 address; IPv6 outside global unicast (2000::/3) is refused.
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it maps.

import { isIP } from 'node:net';
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
      const bad = (why = '') => new Error(`not a CIDR: "${text}"${why} (expected e.g. 10.0.0.0/8 or fd00::/8)`);
      // Standard notation only (see parseIp): "10.1/16" or "010.0.0.0/8" is an error, not a guess.
      const [addrText = '', bitsText, ...extra] = text.split('/');
      if (extra.length > 0 || (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText))) throw bad();
      let addr: ipaddr.IPv4 | ipaddr.IPv6;
      let bits: number;
      try {
        addr = parseIp(addrText);
        bits = bitsText === undefined ? (addr.kind() === 'ipv4' ? 32 : 128) : Number(bitsText);
        if (bits > (addr.kind() === 'ipv4' ? 32 : 128)) throw new Error('prefix too long');
      } catch {
        throw bad();
      }
      const range = canonical(addr);
      if (range.kind() === 'ipv4' && addr.kind() === 'ipv6') {
        // An IPv4-mapped CIDR is the IPv4 CIDR it maps; wider than ::ffff:0:0/96 it has no IPv4 meaning.
        if (bits < 96) throw bad(': an IPv4-mapped range needs a prefix of at least /96');
        bits -= 96;
      }
      return { text, range: [range, bits] as Cidr['range'] };
    });
}

/**
 * Parses an address in standard notation only. ipaddr.js alone is too lenient for a policy check:
 * it reads "127.1" and "0x7f000001" as 127.0.0.1, and "::a.b.c.d" (IPv4-compatible) as the mapped
 * "::ffff:a.b.c.d". So the text must be an IP address to node:net, and an embedded dotted IPv4 is
 * rewritten as its two hex groups before parsing.
 */
function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const family = isIP(text);
  if (family === 0) throw new Error(`not an IP address: ${text}`);
  if (family === 6) {
    const m = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
    if (m) {
      const [a, b, c, d] = m.slice(2).map(Number) as [number, number, number, number];
      text = `${m[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    }
  }
  return ipaddr.parse(text);
}

function canonical(addr: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) return (addr as ipaddr.IPv6).toIPv4Address();
  return addr;
}

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

const DOCUMENTATION_V4: [string, number][] = [['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24], ['198.18.0.0', 15], ['192.0.0.0', 24]];
const PARSED_DOC_V4 = DOCUMENTATION_V4.map(([a, b]) => [ipaddr.IPv4.parse(a), b] as [ipaddr.IPv4, number]);
const DOCUMENTATION_V6 = ipaddr.parseCIDR('2001:db8::/32') as [ipaddr.IPv6, number];
/** IANA's global unicast space. Everything else in IPv6 (e.g. IPv4-compatible ::/96) is not routable. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3') as [ipaddr.IPv6, number];

/** Judges one literal IP address (as resolved by DNS) against the policy. */
export function checkAddress(ip: string, allow: readonly Cidr[]): AddressVerdict {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = canonical(parseIp(ip));
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
  if (addr.kind() === 'ipv6' && !addr.match(GLOBAL_UNICAST_V6)) return { allowed: false, reason: `${ip} is not a global unicast address` };
  return { allowed: true };
}
