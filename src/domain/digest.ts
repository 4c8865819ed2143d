// How a digest reads without a template. Pure.
//
// One item: that notification's own title and body. Several: the title "<n> notifications" and one
// line per item, oldest first: "• title: body" (either part left out when empty), at most 50 lines
// and then "… and <k> more". Channels cut the result to their own limits.

export interface PlainItem {
  title: string;
  body: string;
}

const MAX_LINES = 50;

export function plainDigest(items: readonly PlainItem[]): { title: string; body: string } {
  if (items.length === 1) return { title: items[0]!.title, body: items[0]!.body };
  const lines = items.slice(0, MAX_LINES).map((i) => `• ${[i.title, i.body].filter((p) => p.trim() !== '').join(': ')}`);
  if (items.length > MAX_LINES) lines.push(`… and ${items.length - MAX_LINES} more`);
  return { title: `${items.length} notifications`, body: lines.join('\n') };
}
