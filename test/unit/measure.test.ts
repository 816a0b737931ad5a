// Reading memory figures from a booted card (ci/harness/measure.ts), from text as the guest prints it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capacity, memoryLines, parseMemory, roleOf } from '../../ci/harness/measure.ts';

const SAMPLE = `MemTotal:         981112 kB
MemAvailable:     512000 kB
SwapTotal:             0 kB
SwapFree:              0 kB
proc 1 root 9000 4000 /sbin/init
proc 401 root 98000 80000 /usr/bin/python3 /usr/bin/jupyterhub --config=/root/jupyterhub_config.py
proc 420 root 61000 50000 node /usr/bin/configurable-http-proxy --ip  --port 8888 --api-ip 127.0.0.1
proc 600 alice 120000 100000 /usr/bin/python3 /usr/bin/jupyterhub-singleuser
proc 700 alice 70000 60000 /usr/bin/python3 -m ipykernel_launcher -f /home/alice/.local/share/jupyter/runtime/kernel-1.json
proc 800 bob 1000 500 sh /tmp/pihub-mem.sh
`;

test('processes are told apart by role and owner', () => {
  const s = parseMemory(SAMPLE);
  assert.equal(s.memTotalKiB, 981112);
  assert.equal(s.memAvailableKiB, 512000);
  assert.deepEqual(s.processes.map((p) => `${p.role}:${p.user}:${p.pssKiB}`), ['hub:root:80000', 'proxy:root:50000', 'server:alice:100000', 'kernel:alice:60000']);
  assert.equal(roleOf('root', '/usr/bin/python3 /usr/bin/jupyterhub-singleuser'), undefined, 'a server runs as its person, never as root');
  assert.match(memoryLines(s).join('\n'), /^\| hub \| root \| 96 \| 78 \|$/m);
});

test('capacity: what one more person costs, and how many fit in 1, 2 and 4 GB', () => {
  const idle = parseMemory('MemTotal: 1000000 kB\nMemAvailable: 700000 kB\n');
  const busy = parseMemory('MemTotal: 1000000 kB\nMemAvailable: 300000 kB\n');
  const c = capacity(idle, busy, 2);
  assert.equal(c.perPersonMiB, 195);
  // (683.6 MiB available + extra RAM − a tenth of RAM) / 195.3 MiB per person
  assert.deepEqual(c.people, { '1 GB': 3, '2 GB': 7, '4 GB': 17 });
});
