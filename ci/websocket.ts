// The hub check talks to JupyterLab over WebSocket. Node.js 20 has a global WebSocket only
// with --experimental-websocket (22 and later always): a script run without it starts itself
// again with the flag, so `node --import tsx ci/release.ts …` works on every supported Node.
import { spawnSync } from 'node:child_process';

export function ensureWebSocket(): void {
  if (typeof globalThis.WebSocket !== 'undefined') return;
  if (process.env.PIHUB_WEBSOCKET_REEXEC) throw new Error('this Node.js has no WebSocket, even with --experimental-websocket (Node.js 20 or newer is needed)');
  const r = spawnSync(process.execPath, ['--experimental-websocket', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, PIHUB_WEBSOCKET_REEXEC: '1' },
  });
  process.exit(r.status ?? 1);
}
