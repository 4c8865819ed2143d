// A client process of the real-time benchmark (bench/realtime.ts forks several, to spread the
// connections over processes and their file limits). Commands arrive over IPC, one at a time:
//   {cmd: 'connect', urls, token, n, concurrency} open n WebSockets (round-robin over urls), each
//                                                 authenticated (welcome); answers {connected, failed}
//   {cmd: 'subscribe', channel, n}                the first n send `subscribe`; answers {subscribed}
//                                                 once every `subscribed` frame came back
//   {cmd: 'collect'}                              answers {latencies} (ms from the publication's
//                                                 `sent` wall time to its receipt) and clears them
//   {cmd: 'exit'}
// Receipt time is performance.timeOrigin + performance.now(), as the publisher's `sent` (same
// machine, same clock). A publication is recognised without a full JSON.parse (the client's own
// CPU competes with the server's on the machine).

import { WebSocket } from 'ws';

interface Conn {
  ws: WebSocket;
}

const conns: Conn[] = [];
let latencies: number[] = [];
let subscribedWaiting = 0;
let onSubscribed: (() => void) | undefined;
const now = () => performance.timeOrigin + performance.now();
const SENT = '"sent":';

function open(url: string, token: string): Promise<Conn | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
    let welcomed = false;
    ws.on('message', (data) => {
      const s = data.toString();
      if (!welcomed) {
        if (s.includes('"welcome"')) {
          welcomed = true;
          resolve({ ws });
        }
        return;
      }
      const i = s.indexOf(SENT);
      if (i >= 0 && s.startsWith('{"type":"publication"')) {
        latencies.push(now() - Number.parseFloat(s.slice(i + SENT.length)));
        return;
      }
      if (s.startsWith('{"type":"subscribed"') && subscribedWaiting > 0 && --subscribedWaiting === 0) onSubscribed?.();
    });
    ws.on('error', () => {
      if (!welcomed) resolve(undefined);
    });
    ws.on('close', () => {
      if (!welcomed) resolve(undefined);
    });
  });
}

process.on('message', async (m: { cmd: string; urls?: string[]; token?: string; n?: number; concurrency?: number; channel?: string }) => {
  if (m.cmd === 'connect') {
    let next = 0;
    let failed = 0;
    const worker = async () => {
      while (next < m.n!) {
        const i = next++;
        const c = await open(m.urls![i % m.urls!.length]!, m.token!);
        if (c) conns.push(c);
        else failed++;
      }
    };
    await Promise.all(Array.from({ length: m.concurrency ?? 50 }, worker));
    process.send!({ connected: conns.length, failed });
  } else if (m.cmd === 'subscribe') {
    const targets = conns.slice(0, m.n);
    await new Promise<void>((resolve) => {
      subscribedWaiting = targets.length;
      onSubscribed = resolve;
      if (targets.length === 0) resolve();
      const frame = JSON.stringify({ type: 'subscribe', channel: m.channel });
      for (const c of targets) c.ws.send(frame);
    });
    process.send!({ subscribed: targets.length });
  } else if (m.cmd === 'collect') {
    process.send!({ latencies });
    latencies = [];
  } else if (m.cmd === 'exit') {
    for (const c of conns) c.ws.terminate();
    process.exit(0);
  }
});
process.send!({ ready: true });
