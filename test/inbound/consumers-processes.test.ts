// Two pulling processes share one consumer over 5,000 events, on each store; one is SIGKILLed
// while it holds a lease. At the end every event was acked exactly once, the killed process's
// events were handed out again after the ack timeout, and nothing is left unacked.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeOnStores, startHeraldOn, waitFor, type TestHerald } from '../helpers/herald.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

const EVENTS = 5000;
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const PULLER = fileURLToPath(new URL('./puller.ts', import.meta.url));

interface Puller {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function startPuller(h: TestHerald, mode: 'normal' | 'victim'): Puller {
  const child = spawn(NODE, [PULLER, h.url, h.key, 'workers', mode, '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    buf += s;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  return { child, lines, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

describeOnStores('consumers: two pulling processes, one killed mid-lease', (store) => {
  let h: TestHerald;
  const ids: string[] = [];
  before(async () => {
    h = await startHeraldOn(store);
    assert.equal((await h.api('PUT', '/v1/sources/load', { path: '/load/repo', provider: 'github', secrets: [GH_SECRET] })).status, 201);
    assert.equal((await h.api('PUT', '/v1/consumers/workers', { filter: { path: '/load/**' }, ack_timeout: '3s', max_deliveries: 10 })).status, 201);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < EVENTS) {
          const i = next++;
          const r = await postGithub(h.url, '/load/repo', { i }, { event: 'push' });
          assert.equal(r.status, 202, r.text);
          ids.push(r.body.id);
        }
      }),
    );
  });
  after(() => h?.stop());

  it('every event is acked exactly once; the killed puller\'s lease expires and its events go to the other', async (t) => {
    const victim = startPuller(h, 'victim');
    const survivor = startPuller(h, 'normal');
    const held = await waitFor(() => victim.lines.find((l) => l.holding)?.holding as string[] | undefined, 120_000, 'the victim to hold a lease');
    victim.child.kill('SIGKILL');
    await victim.exited;
    assert.equal(await survivor.exited, 0, 'the survivor drained the consumer and stopped');

    const ackCount = new Map<string, number>();
    for (const l of [...victim.lines, ...survivor.lines]) for (const id of (l.acked as string[] | undefined) ?? []) ackCount.set(id, (ackCount.get(id) ?? 0) + 1);
    const missing = ids.filter((id) => !ackCount.has(id));
    assert.deepEqual(missing, [], 'every event acked');
    assert.deepEqual([...ackCount].filter(([, n]) => n !== 1), [], 'no event acked twice');
    assert.equal(ackCount.size, EVENTS);

    // The held events went to the survivor after the victim's lease expired: their second delivery.
    const survivorPulled = new Map<string, number>();
    for (const l of survivor.lines) for (const [id, n] of (l.pulled as [string, number][] | undefined) ?? []) survivorPulled.set(id, n);
    for (const id of held) assert.equal(survivorPulled.get(id), 2, `${id}: handed to the survivor again after the lease`);
    const lag = await h.api('GET', '/v1/consumers/workers');
    assert.equal(lag.body.unacked, 0);
    assert.equal(lag.body.dead, 0);
    const victimAcked = victim.lines.reduce((n, l) => n + ((l.acked as string[] | undefined)?.length ?? 0), 0);
    t.diagnostic(`victim acked ${victimAcked} and held ${held.length} at the kill; the survivor acked ${EVENTS - victimAcked}`);
  });
});
