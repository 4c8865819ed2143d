// A consumer client as its own process, for test/inbound/consumers-processes.test.ts: pulls from
// a consumer, acks what it pulled, and reports on stdout one JSON line per step:
//   {"pulled": [[id, deliveries], …]}  {"acked": [id, …]} (what the server says it acked)
//   {"holding": [id, …]}               victim mode: it pulled these and will never ack them
// Arguments: <base url> <api key> <consumer> <normal|victim> [victim: batches to ack before holding]
// A normal puller stops after `idle` empty long-polls in a row.

const [url, key, consumer, mode, holdAfterText] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const holdAfter = Number(holdAfterText ?? '3');
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

let batches = 0;
let idle = 0;
for (;;) {
  const r = await fetch(`${url}/v1/consumers/${consumer}/events?limit=50&wait=1s`, { headers });
  const body = (await r.json()) as { data: { id: string; deliveries: number }[] };
  if (r.status !== 200) throw new Error(`pull: ${r.status} ${JSON.stringify(body)}`);
  if (body.data.length === 0) {
    if (mode === 'normal' && ++idle >= 8) break;
    continue;
  }
  idle = 0;
  const ids = body.data.map((e) => e.id);
  out({ pulled: body.data.map((e) => [e.id, e.deliveries]) });
  if (mode === 'victim' && batches >= holdAfter) {
    out({ holding: ids });
    await new Promise(() => {}); // holds its lease until it is killed
  }
  const a = await fetch(`${url}/v1/consumers/${consumer}/ack`, { method: 'POST', headers, body: JSON.stringify({ ids }) });
  const acked = (await a.json()) as { acked: string[] };
  if (a.status !== 200) throw new Error(`ack: ${a.status} ${JSON.stringify(acked)}`);
  out({ acked: acked.acked });
  batches++;
}
