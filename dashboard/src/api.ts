// The dashboard's only way to the server: the public /v1 API, same origin, authenticated by the
// HttpOnly session cookies (never a token in script-readable storage). Requests other than GET carry
// the `herald_csrf` cookie's value as X-CSRF-Token (docs/accounts.md). Paths are relative to the
// page ('v1/…'), so a deployment under a path prefix works unchanged. An expired access cookie is
// renewed once through POST v1/auth/refresh (the refresh cookie), then the request is repeated.

export interface Problem {
  status: number;
  code: string;
  title?: string;
  detail?: string;
  errors?: { path?: string; message?: string }[];
}

export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title || problem.code);
    this.problem = problem;
  }
}

function csrfToken(): string {
  const m = /(?:^|;\s*)herald_csrf=([^;]*)/.exec(document.cookie);
  return m?.[1] ? decodeURIComponent(m[1]) : '';
}

/** Called when the session is gone for good (refresh refused): the app shows the sign-in page. */
let onSignedOut: () => void = () => {};
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken();
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
}

let refreshing: Promise<boolean> | undefined;
function refresh(): Promise<boolean> {
  refreshing ??= send('POST', 'v1/auth/refresh', {})
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => (refreshing = undefined));
  return refreshing;
}

async function problemOf(res: Response): Promise<Problem> {
  try {
    const p = (await res.json()) as Partial<Problem>;
    return { ...p, status: res.status, code: typeof p.code === 'string' ? p.code : `http_${res.status}` };
  } catch {
    return { status: res.status, code: `http_${res.status}`, detail: res.statusText };
  }
}

const NO_REFRESH = new Set(['v1/auth/login', 'v1/auth/refresh', 'v1/auth/providers']);

/** One API call; resolves with the parsed JSON (undefined for 204), rejects with an ApiError. */
export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  let res = await send(method, path, body);
  if (res.status === 401 && !NO_REFRESH.has(path)) {
    if (await refresh()) res = await send(method, path, body);
    if (res.status === 401) onSignedOut();
  }
  if (!res.ok) throw new ApiError(await problemOf(res));
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** `path?k=v&…` without the empty parameters. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) {
    const p = err.problem;
    const details = (p.errors ?? []).map((e) => [e.path, e.message].filter(Boolean).join(': ')).filter(Boolean);
    return [p.detail || p.title || p.code, ...details].join(' — ');
  }
  return err instanceof Error ? err.message : String(err);
}
