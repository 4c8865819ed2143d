import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkAddress, parseCidrList } from '../../src/net/address-policy.ts';

const refused = (ip: string, allow = parseCidrList('')) => {
  const v = checkAddress(ip, allow);
  assert.equal(v.allowed, false, `${ip} should be refused`);
  if (!v.allowed) assert.ok(v.reason.length > 0);
};
const allowed = (ip: string, allow = parseCidrList('')) => assert.deepEqual(checkAddress(ip, allow), { allowed: true }, `${ip} should be allowed`);

describe('checkAddress with the default policy', () => {
  const REFUSED: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'RFC 1918 10/8'],
    ['10.255.255.255', 'RFC 1918 10/8'],
    ['172.16.0.1', 'RFC 1918 172.16/12'],
    ['172.31.255.254', 'RFC 1918 172.16/12'],
    ['192.168.0.1', 'RFC 1918 192.168/16'],
    ['192.168.255.254', 'RFC 1918 192.168/16'],
    ['169.254.169.254', 'cloud metadata (link-local)'],
    ['169.254.0.1', 'link-local'],
    ['100.64.0.1', 'CGNAT 100.64/10'],
    ['100.127.255.254', 'CGNAT 100.64/10'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'this network'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['::1', 'IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fe80::1', 'IPv6 link-local'],
    ['fc00::1', 'unique-local fc00::/7'],
    ['fd12:3456::1', 'unique-local fc00::/7'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
    ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped loopback, long form'],
    ['2001:db8::1', 'IPv6 documentation'],
    ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
    ['64:ff9b::8.8.8.8', 'NAT64 (well-known prefix)'],
    ['64:ff9b:1::a00:1', 'NAT64 local-use prefix'],
    ['2002:7f00:1::1', '6to4 of 127.0.0.1'],
    ['2001::1', 'Teredo'],
    ['::a00:1', 'IPv4-compatible ::10.0.0.1 (deprecated, tunnelled as IPv4 by sit)'],
    ['::8.8.8.8', 'IPv4-compatible (deprecated)'],
    ['fec0::1', 'site-local (deprecated)'],
    ['100::1', 'discard-only'],
    ['not-an-ip', 'not an address'],
    ['', 'not an address'],
  ];
  for (const [ip, what] of REFUSED) it(`refuses ${ip || '""'} (${what})`, () => refused(ip));

  for (const ip of ['8.8.8.8', '1.1.1.1', '93.184.215.14', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']) {
    it(`allows ${ip} (global unicast)`, () => allowed(ip));
  }

  it('judges an IPv4-mapped address as the IPv4 address it maps', () => {
    allowed('::ffff:8.8.8.8');
    allowed('::ffff:808:808');
  });

  it('refuses every address of the private, loopback and link-local IPv4 ranges, in both notations (property)', () => {
    const ranges: [number, number][] = [
      [0x0a000000, 8],
      [0xac100000, 12],
      [0xc0a80000, 16],
      [0x7f000000, 8],
      [0xa9fe0000, 16],
      [0x64400000, 10],
      [0xe0000000, 4],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...ranges), fc.nat(), ([net, bits], host) => {
        const n = (net | (host & (2 ** (32 - bits) - 1))) >>> 0;
        const v4 = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
        refused(v4);
        refused(`::ffff:${v4}`);
        refused(`::ffff:${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`);
      }),
    );
  });
});

describe('allow list (HERALD_ALLOW_NETWORKS)', () => {
  it('admits addresses inside a v4 CIDR and nothing else', () => {
    const allow = parseCidrList('10.1.0.0/16, 127.0.0.1');
    allowed('10.1.2.3', allow);
    allowed('10.1.255.255', allow);
    allowed('127.0.0.1', allow);
    refused('10.2.0.1', allow);
    refused('127.0.0.2', allow);
    refused('192.168.1.1', allow);
    allowed('8.8.8.8', allow); // public stays allowed
  });

  it('a v4 CIDR also admits the ::ffff: mapped form of its addresses', () => {
    const allow = parseCidrList('127.0.0.0/8,10.0.0.0/8');
    allowed('::ffff:127.0.0.1', allow);
    allowed('::ffff:7f00:1', allow);
    allowed('::ffff:10.9.8.7', allow);
    refused('::ffff:192.168.0.1', allow);
    refused('::1', allow); // IPv6 loopback is not inside an IPv4 CIDR
  });

  it('a mapped CIDR is the IPv4 CIDR it maps', () => {
    const allow = parseCidrList('::ffff:10.0.0.0/104');
    allowed('10.1.2.3', allow);
    allowed('::ffff:10.1.2.3', allow);
    refused('192.168.0.1', allow);
    refused('127.0.0.1', allow);
  });

  it('admits addresses inside a v6 CIDR and nothing else', () => {
    const allow = parseCidrList('fd00:1234::/32,::1/128');
    allowed('fd00:1234::5', allow);
    allowed('::1', allow);
    refused('fd00:1235::5', allow);
    refused('fe80::1', allow);
    refused('127.0.0.1', allow);
  });

  it('v4 CIDR membership agrees with arithmetic (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 32 - 1 }), fc.integer({ min: 8, max: 32 }), fc.nat({ max: 2 ** 32 - 1 }), (net, bits, addr) => {
        const dotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
        const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
        const allow = parseCidrList(`${dotted((net & mask) >>> 0)}/${bits}`);
        const inside = ((addr & mask) >>> 0) === ((net & mask) >>> 0);
        if (inside) {
          allowed(dotted(addr), allow);
          allowed(`::ffff:${dotted(addr)}`, allow);
        } else {
          // outside the CIDR the default policy decides
          assert.deepEqual(checkAddress(dotted(addr), allow), checkAddress(dotted(addr), []));
        }
      }),
    );
  });
});

describe('parseCidrList', () => {
  it('parses a comma-separated list, ignoring blanks and whitespace', () => {
    assert.deepEqual(parseCidrList(''), []);
    assert.deepEqual(parseCidrList(' , '), []);
    const list = parseCidrList(' 10.0.0.0/8 ,fd00::/8,, 127.0.0.1 ,::1 ');
    assert.deepEqual(list.map((c) => c.text), ['10.0.0.0/8', 'fd00::/8', '127.0.0.1', '::1']);
    assert.deepEqual(list.map((c) => [c.range[0].toString(), c.range[1]]), [['10.0.0.0', 8], ['fd00::', 8], ['127.0.0.1', 32], ['::1', 128]]);
  });

  it('names the bad entry in its error', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0.0/8/8', '300.1.1.1/8', '10.0.0.0/', '/8', 'fd00::/x', '10.1/16', '010.0.0.0/8', '::ffff:10.0.0.0/90']) {
      assert.throws(
        () => parseCidrList(`127.0.0.0/8, ${bad}, ::1/128`),
        (e: Error) => e.message.includes(`"${bad}"`),
        bad,
      );
    }
  });
});
