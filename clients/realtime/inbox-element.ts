// <herald-inbox>: a notification bell with an unread badge, the recipient's inbox items, "Mark
// read" per item and "Mark all read" (docs/realtime.md, "The inbox web component"). No framework;
// Herald serves it together with client.ts as one script at /v1/realtime/inbox.js.
//
// Attributes: `token` (a connection token) or `token-url` (an endpoint of the app answering a
// connection token as JSON {token} or as text, fetched with the page's cookies, before every
// connection and before expiry); `url`: Herald's base URL (default: where the script came from).
// A `tokenProvider` property (a function returning a token) takes precedence over both.
//
// Contract: content from notifications is only ever set as text (textContent) and an action URL
// only as an http(s) link's href; no innerHTML, no inline style attributes, no eval, so a page with
// `script-src 'self' <herald>; style-src 'self'` works (styles are a constructed stylesheet).
// The element has the attribute `live` while its inbox subscription is up (style
// `herald-inbox:not([live])` to show it offline). `align="right"` opens the list leftwards from
// the bell's right edge (for a bell at the right of a page). Events on the element: `herald-inbox:item`
// (detail: the new item), `herald-inbox:unread` (detail: {unread}).

import { HeraldRealtime, type InboxItem } from './client.ts';

const SCRIPT_ORIGIN = (() => {
  const s = document.currentScript as HTMLScriptElement | null;
  try {
    return s?.src ? new URL(s.src).origin : location.origin;
  } catch {
    return location.origin;
  }
})();

const CSS = `
:host { position: relative; display: inline-block; font: 14px/1.4 system-ui, sans-serif; color: #222; }
.bell { position: relative; border: 0; background: none; font-size: 20px; cursor: pointer; padding: 4px 8px; }
.badge { position: absolute; top: 0; right: 0; min-width: 16px; padding: 0 4px; border-radius: 8px; background: #d22; color: #fff; font-size: 11px; line-height: 16px; text-align: center; }
.badge[hidden], .panel[hidden], .empty[hidden] { display: none; }
.panel { position: absolute; left: 0; z-index: 1000; width: 320px; max-height: 420px; overflow-y: auto; background: #fff; border: 1px solid #ccc; border-radius: 6px; box-shadow: 0 4px 16px rgba(0,0,0,.15); }
:host([align=right]) .panel { left: auto; right: 0; }
.head { display: flex; justify-content: space-between; align-items: center; padding: 8px 12px; border-bottom: 1px solid #eee; font-weight: 600; }
ul { list-style: none; margin: 0; padding: 0; }
li { padding: 8px 12px; border-bottom: 1px solid #f2f2f2; }
li.unread { background: #f3f7ff; }
.title { font-weight: 600; }
.body { color: #444; white-space: pre-wrap; }
.meta { display: flex; gap: 8px; align-items: center; font-size: 12px; color: #777; margin-top: 2px; }
button.link { border: 0; background: none; color: #15c; cursor: pointer; padding: 0; font: inherit; }
.empty { padding: 12px; color: #777; margin: 0; }
`;

const isRead = (i: InboxItem) => i.status === 'read' || i.status === 'archived';

export class HeraldInboxElement extends HTMLElement {
  tokenProvider: (() => string | Promise<string>) | undefined;
  #client: HeraldRealtime | undefined;
  #items: InboxItem[] = [];
  #unread = 0;
  readonly #badge: HTMLSpanElement;
  readonly #bell: HTMLButtonElement;
  readonly #panel: HTMLDivElement;
  readonly #list: HTMLUListElement;
  readonly #empty: HTMLParagraphElement;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in root) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    }
    this.#bell = el('button', 'bell', '\u{1F514}');
    this.#bell.type = 'button';
    this.#bell.setAttribute('aria-label', 'Notifications');
    this.#bell.setAttribute('aria-expanded', 'false');
    this.#badge = el('span', 'badge');
    this.#badge.hidden = true;
    this.#bell.append(this.#badge);
    this.#panel = el('div', 'panel');
    this.#panel.hidden = true;
    const head = el('div', 'head', 'Notifications');
    const all = el('button', 'link all', 'Mark all read');
    all.type = 'button';
    all.addEventListener('click', () => void this.#markAll());
    head.append(all);
    this.#list = el('ul', 'list');
    this.#empty = el('p', 'empty', 'No notifications');
    this.#panel.append(head, this.#list, this.#empty);
    root.append(this.#bell, this.#panel);
    this.#bell.addEventListener('click', () => this.toggle());
  }

  get unread(): number {
    return this.#unread;
  }

  toggle(open = this.#panel.hidden): void {
    this.#panel.hidden = !open;
    this.#bell.setAttribute('aria-expanded', String(open));
    if (open) void this.#reload();
  }

  connectedCallback(): void {
    if (this.#client) return;
    const url = this.getAttribute('url') ?? SCRIPT_ORIGIN;
    const client = new HeraldRealtime({ url, token: () => this.#token(), channels: ['inbox'] });
    this.#client = client;
    client.on('open', () => void this.#reload());
    client.on('subscribed', (e) => {
      if (e.channel === 'inbox') this.setAttribute('live', '');
    });
    client.on('close', () => this.removeAttribute('live'));
    client.on('resync', () => void this.#reload());
    client.on('inbox.unread', (e) => this.#setUnread(e.unread));
    client.on('inbox.item', ({ item }) => {
      if (!this.#items.some((i) => i.id === item.id)) this.#items.unshift(item);
      this.#render();
      this.dispatchEvent(new CustomEvent('herald-inbox:item', { detail: item }));
    });
    client.connect();
  }

  disconnectedCallback(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  async #token(): Promise<string> {
    if (this.tokenProvider) return this.tokenProvider();
    const fixed = this.getAttribute('token');
    if (fixed) return fixed;
    const from = this.getAttribute('token-url');
    if (!from) throw new Error('<herald-inbox> needs a token or token-url attribute');
    const res = await fetch(from, { credentials: 'include' });
    if (!res.ok) throw new Error(`token-url answered ${res.status}`);
    const text = (await res.text()).trim();
    return text.startsWith('{') ? (JSON.parse(text) as { token: string }).token : text;
  }

  async #reload(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    try {
      const [page, unread] = await Promise.all([client.inbox.list({ status: 'all', limit: 50 }), client.inbox.count()]);
      this.#items = page.data.filter((i) => i.status !== 'archived');
      this.#setUnread(unread);
      this.#render();
    } catch {
      // the next open, resync or toggle reads again
    }
  }

  async #markRead(item: InboxItem): Promise<void> {
    const r = await this.#client?.inbox.markRead(item.id);
    if (!r) return;
    item.status = 'read';
    this.#setUnread(r.unread);
    this.#render();
  }

  async #markAll(): Promise<void> {
    const r = await this.#client?.inbox.readAll();
    if (!r) return;
    for (const i of this.#items) if (!isRead(i)) i.status = 'read';
    this.#setUnread(r.unread);
    this.#render();
  }

  #setUnread(n: number): void {
    if (n === this.#unread && this.#badge.hidden === (n === 0)) return;
    this.#unread = n;
    this.#badge.textContent = n > 99 ? '99+' : String(n);
    this.#badge.hidden = n === 0;
    this.dispatchEvent(new CustomEvent('herald-inbox:unread', { detail: { unread: n } }));
  }

  #render(): void {
    this.#list.replaceChildren(
      ...this.#items.map((item) => {
        const li = el('li', isRead(item) ? 'item' : 'item unread');
        li.dataset.id = item.id;
        li.append(el('div', 'title', item.title ?? ''));
        if (item.body) li.append(el('div', 'body', item.body));
        const meta = el('div', 'meta');
        meta.append(el('time', 'time', new Date(item.created_at).toLocaleString()));
        const href = safeHref(item.action_url);
        if (href) {
          const a = el('a', 'open', 'Open');
          a.href = href;
          a.rel = 'noopener';
          meta.append(a);
        }
        if (!isRead(item)) {
          const b = el('button', 'link read', 'Mark read');
          b.type = 'button';
          b.addEventListener('click', () => void this.#markRead(item));
          meta.append(b);
        }
        li.append(meta);
        return li;
      }),
    );
    this.#empty.hidden = this.#items.length > 0;
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function safeHref(url: string | null): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

if (!customElements.get('herald-inbox')) customElements.define('herald-inbox', HeraldInboxElement);
