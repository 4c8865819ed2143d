// Shared pieces of every page: times, states (loading, empty, error), status badges and a list paged
// by cursor. Everything here renders text through JSX (escaped by Preact); nothing sets HTML.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, messageOf, withQuery } from './api.ts';

/** A time in the viewer's zone; the UTC instant on hover. */
export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  const d = new Date(iso);
  return (
    <time dateTime={iso} title={d.toISOString()}>
      {d.toLocaleString()}
    </time>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="state" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="state error" role="alert">
      {messageOf(error)}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="state empty">{children}</p>;
}

export function Status({ value }: { value: string }) {
  return <span class={`badge s-${value}`}>{value}</span>;
}

/** GET a path; `reload` fetches again (after an action, or on a timer). */
export function useGet<T>(path: string | null): { data?: T; error?: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    api<T>('GET', path).then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

export interface Page<T> {
  data: T[];
  next_cursor?: string | null;
}

/**
 * A list paged by cursor, never loading everything: one page at a time, "Next page" follows
 * `next_cursor`, "Previous page" goes back through the cursors seen. Changing `params` starts over.
 */
export function PagedList<T>(props: {
  path: string;
  params?: Record<string, string | undefined>;
  label: string;
  empty: string;
  head: ComponentChildren;
  row: (item: T) => ComponentChildren;
  refresh?: number;
}) {
  const key = JSON.stringify([props.path, props.params]);
  const [cursors, setCursors] = useState<string[]>([]);
  useEffect(() => setCursors([]), [key]);
  const cursor = cursors[cursors.length - 1];
  const { data, error, loading, reload } = useGet<Page<T>>(withQuery(props.path, { ...props.params, cursor }));
  useEffect(() => {
    if (props.refresh) reload();
  }, [props.refresh]);
  return (
    <div>
      <ErrorBox error={error} />
      {loading && !data ? <Loading /> : null}
      {data && data.data.length === 0 ? <Empty>{props.empty}</Empty> : null}
      {data && data.data.length > 0 ? (
        <div class="table-wrap">
          <table aria-label={props.label}>
            <thead>{props.head}</thead>
            <tbody>{data.data.map((item) => props.row(item))}</tbody>
          </table>
        </div>
      ) : null}
      <nav class="pager" aria-label={`${props.label} pages`}>
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" disabled={!data?.next_cursor} onClick={() => data?.next_cursor && setCursors([...cursors, data.next_cursor])}>
          Next page
        </button>
      </nav>
    </div>
  );
}

export type Role = 'viewer' | 'member' | 'admin' | 'owner';

/** The signed-in user as GET /v1/auth/me answers: who, the organization acted in, and all of theirs. */
export interface Me {
  user: { id: string; email: string; name: string };
  organization: { id: string; role: Role };
  organizations: { id: string; name: string; role: Role }[];
}
const RANK: Record<Role, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };
/** The role table of docs/accounts.md: viewer reads, member also sends, admin does everything. */
export function can(role: Role, action: 'read' | 'send' | 'admin'): boolean {
  return RANK[role] >= (action === 'read' ? 0 : action === 'send' ? 1 : 2);
}

export function JsonView({ value }: { value: unknown }) {
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
