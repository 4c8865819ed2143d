// Preloaded into a Herald process under test (--import, in every thread): records the URL of
// every module that thread loads (ESM and require alike), and Node's own internal modules loaded so
// far as `node:internal/…` (process.moduleLoadList), and keeps writing the list to
// $HERALD_TEST_MODULE_LOG/thread-<threadId>.json, a moment after the last load (written whole).

import { renameSync, writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

const dir = process.env.HERALD_TEST_MODULE_LOG;
if (dir) {
  const loaded = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const file = join(dir, `thread-${threadId}.json`);
  // Written aside and renamed, so that a reader never sees half a list.
  const write = () => {
    // process.moduleLoadList is undocumented (and untyped) but stable since Node 0.x.
    const list = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
    const internal = list.filter((m) => m.startsWith('NativeModule ')).map((m) => `node:${m.slice('NativeModule '.length)}`);
    writeFileSync(`${file}.tmp`, JSON.stringify([...loaded, ...internal]));
    renameSync(`${file}.tmp`, file);
  };
  registerHooks({
    load(url, context, nextLoad) {
      loaded.add(url);
      clearTimeout(timer);
      timer = setTimeout(write, 100);
      timer.unref();
      return nextLoad(url, context);
    },
  });
}
