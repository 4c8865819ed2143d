// A small MIME reader for tests: enough to check a message's structure, its headers (RFC 2047
// words decoded) and its decoded part bodies. It asserts that multiparts are closed.

import assert from 'node:assert/strict';

export interface MimePart {
  headers: Map<string, string>;
  body: string;
  parts: MimePart[];
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return headers;
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case 'quoted-printable':
      return Buffer.from(
        body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      ).toString('utf8');
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    default:
      return body;
  }
}

export function parseMime(raw: string): MimePart {
  const split = raw.indexOf('\r\n\r\n');
  const headers = parseHeaders(raw.slice(0, split));
  const rawBody = raw.slice(split + 4);
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (type.toLowerCase().startsWith('multipart/') && boundary) {
    const chunks = rawBody.split(`--${boundary}`);
    // chunks[0] is the preamble; the last one starts with "--" (the closing delimiter)
    const parts = chunks.slice(1, -1).map((c) => parseMime(c.replace(/^\r\n/, '').replace(/\r\n$/, '')));
    assert.ok(chunks.at(-1)!.startsWith('--'), 'multipart is closed');
    return { headers, body: '', parts };
  }
  return { headers, body: decodeBody(rawBody, headers.get('content-transfer-encoding')), parts: [] };
}

/** Decodes a header's RFC 2047 encoded words (adjacent words are joined before UTF-8 decoding). */
export function decodeHeader(value: string): string {
  return value.replace(/(=\?UTF-8\?[BQ]\?[^?]*\?=\s*)+/gi, (run) => {
    const bytes: Buffer[] = [];
    for (const [, enc, text] of run.matchAll(/=\?UTF-8\?([BQ])\?([^?]*)\?=/gi)) {
      if (enc!.toUpperCase() === 'B') bytes.push(Buffer.from(text!, 'base64'));
      else bytes.push(Buffer.from(text!.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1'));
    }
    return Buffer.concat(bytes).toString('utf8');
  });
}

export function findPart(p: MimePart, mediaType: string): MimePart | undefined {
  if ((p.headers.get('content-type') ?? '').toLowerCase().startsWith(mediaType)) return p;
  for (const c of p.parts) {
    const f = findPart(c, mediaType);
    if (f) return f;
  }
  return undefined;
}

/** What an email carried: subject, text and HTML, decoded. */
export function mailContent(raw: string): { subject: string; text: string; html: string } {
  const mime = parseMime(raw);
  return {
    subject: decodeHeader(mime.headers.get('subject') ?? ''),
    text: findPart(mime, 'text/plain')?.body ?? '',
    html: findPart(mime, 'text/html')?.body ?? '',
  };
}
