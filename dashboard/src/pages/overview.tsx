// Overview: GET v1/stats polled every 5 s (accepted notifications and ended deliveries over the last
// hour, day or week; the queue and the dead-letter count now) and this node's circuit states from
// GET v1/providers.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, withQuery } from '../api.ts';
import { Chart } from '../chart.tsx';
import { Empty, ErrorBox, Loading, Status } from '../ui.tsx';

interface Stats {
  from: string;
  to: string;
  bucket_ms: number;
  accepted: { start: string; count: number }[];
  deliveries: { start: string; channel: string; status: string; count: number }[];
  queue: { channel: string; waiting: number; due: number; oldest_due_age_ms: number | null }[];
  dead_letters: number;
}
interface Provider {
  provider: string;
  channel: string;
  configured: boolean;
  circuit: string | null;
}

const RANGES = {
  hour: { label: 'Last hour', spanMs: 3_600_000, bucket: '1m', bucketMs: 60_000 },
  day: { label: 'Last day', spanMs: 86_400_000, bucket: '15m', bucketMs: 900_000 },
  week: { label: 'Last week', spanMs: 7 * 86_400_000, bucket: '1h', bucketMs: 3_600_000 },
} as const;
type Range = keyof typeof RANGES;
const POLL_MS = 5000;
const WENT_OUT = new Set(['sent', 'delivered', 'read', 'acknowledged']);

function outcome(status: string): 'sent' | 'dead-lettered' | 'other' {
  return WENT_OUT.has(status) ? 'sent' : status === 'exhausted' ? 'dead-lettered' : 'other';
}

export function Overview() {
  const [range, setRange] = useState<Range>('hour');
  const [stats, setStats] = useState<Stats | null>(null);
  const [providers, setProviders] = useState<Provider[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const r = RANGES[range];
    const tick = async () => {
      // The window ends at the next bucket boundary, so the newest bucket is the current one.
      const to = (Math.floor(Date.now() / r.bucketMs) + 1) * r.bucketMs;
      try {
        const [st, pr] = await Promise.all([
          api<Stats>('GET', withQuery('v1/stats', { from: new Date(to - r.spanMs).toISOString(), to: new Date(to).toISOString(), bucket: r.bucket })),
          api<{ data: Provider[] }>('GET', 'v1/providers'),
        ]);
        if (!live) return;
        setStats(st);
        setProviders(pr.data);
        setError(null);
      } catch (err) {
        if (live) setError(err);
      }
      if (live) timer = setTimeout(() => void tick(), POLL_MS);
    };
    setStats(null);
    void tick();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [range]);

  const charts = useMemo(() => {
    if (!stats) return null;
    const from = Date.parse(stats.from);
    const n = Math.round((Date.parse(stats.to) - from) / stats.bucket_ms);
    const xs = Array.from({ length: n }, (_, i) => (from + i * stats.bucket_ms) / 1000);
    const index = (iso: string) => Math.floor((Date.parse(iso) - from) / stats.bucket_ms);
    const accepted = new Array<number>(n).fill(0);
    for (const a of stats.accepted) if (index(a.start) >= 0 && index(a.start) < n) accepted[index(a.start)] = a.count;
    const outcomes = { sent: new Array<number>(n).fill(0), 'dead-lettered': new Array<number>(n).fill(0), other: new Array<number>(n).fill(0) };
    const byChannel = new Map<string, Record<string, number>>();
    for (const d of stats.deliveries) {
      const i = index(d.start);
      if (i >= 0 && i < n) outcomes[outcome(d.status)][i]! += d.count;
      const row = byChannel.get(d.channel) ?? {};
      row[d.status] = (row[d.status] ?? 0) + d.count;
      byChannel.set(d.channel, row);
    }
    return { xs, accepted, outcomes, byChannel };
  }, [stats]);

  const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  return (
    <>
      <h1>Overview</h1>
      <div class="segmented" role="group" aria-label="Time range">
        {(Object.keys(RANGES) as Range[]).map((k) => (
          <button type="button" key={k} aria-pressed={range === k} onClick={() => setRange(k)}>
            {RANGES[k].label}
          </button>
        ))}
      </div>
      <ErrorBox error={error} />
      {!stats || !charts ? (
        error ? null : <Loading />
      ) : (
        <>
          <section class="tiles" aria-label="Totals">
            <div class="tile">
              <span class="n">{total(charts.accepted)}</span> notifications accepted
            </div>
            <div class="tile">
              <span class="n">{total(charts.outcomes.sent)}</span> deliveries sent
            </div>
            <div class="tile">
              <span class="n">{total(charts.outcomes['dead-lettered'])}</span> dead-lettered
            </div>
            <div class="tile">
              <span class="n">{stats.queue.reduce((a, q) => a + q.waiting, 0)}</span> waiting in the queue
            </div>
            <div class="tile">
              <span class="n">{stats.dead_letters}</span> in the dead-letter queue
            </div>
          </section>
          <div class="charts">
            <Chart title="Notifications accepted" xs={charts.xs} series={[{ label: 'accepted', values: charts.accepted, color: '#3b82f6' }]} />
            <Chart
              title="Deliveries by outcome"
              xs={charts.xs}
              series={[
                { label: 'sent', values: charts.outcomes.sent, color: '#16a34a' },
                { label: 'dead-lettered', values: charts.outcomes['dead-lettered'], color: '#dc2626' },
                { label: 'other', values: charts.outcomes.other, color: '#a16207' },
              ]}
            />
          </div>
          <h2>Deliveries by channel</h2>
          {charts.byChannel.size === 0 ? (
            <Empty>No delivery ended in this range.</Empty>
          ) : (
            <div class="table-wrap">
              <table aria-label="Deliveries by channel">
                <thead>
                  <tr>
                    <th scope="col">Channel</th>
                    <th scope="col">Outcomes</th>
                  </tr>
                </thead>
                <tbody>
                  {[...charts.byChannel].map(([channel, counts]) => (
                    <tr key={channel}>
                      <td>{channel}</td>
                      <td>
                        {Object.entries(counts).map(([st, c]) => (
                          <span key={st} class="count">
                            <Status value={st} /> {c}
                          </span>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2>Queue</h2>
          {stats.queue.length === 0 ? (
            <Empty>Nothing is waiting.</Empty>
          ) : (
            <div class="table-wrap">
              <table aria-label="Queue">
                <thead>
                  <tr>
                    <th scope="col">Channel</th>
                    <th scope="col">Waiting</th>
                    <th scope="col">Due now</th>
                    <th scope="col">Oldest due for</th>
                  </tr>
                </thead>
                <tbody>
                  {stats.queue.map((q) => (
                    <tr key={q.channel}>
                      <td>{q.channel}</td>
                      <td>{q.waiting}</td>
                      <td>{q.due}</td>
                      <td>{q.oldest_due_age_ms === null ? '—' : `${Math.round(q.oldest_due_age_ms / 1000)} s`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h2>Circuit breakers</h2>
          {providers && providers.some((p) => p.circuit) ? (
            <ul class="circuits">
              {providers
                .filter((p) => p.circuit)
                .map((p) => (
                  <li key={p.provider}>
                    {p.provider} ({p.channel}) <Status value={p.circuit!} />
                  </li>
                ))}
            </ul>
          ) : (
            <Empty>No workers on this node report circuits.</Empty>
          )}
        </>
      )}
    </>
  );
}
