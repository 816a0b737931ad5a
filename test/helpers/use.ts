// What a person does with the hub, as the end-to-end tests of every base check it: an admin logs
// in through the form, starts JupyterLab and runs numpy (with OpenBLAS) as herself and sees the
// admin page; a non-admin pip installs a wheel into her home, cannot see the admin page, and uses
// a terminal. Each returns what the tests report beside their assertions.
import assert from 'node:assert/strict';
import { HubSession } from '../../ci/harness/hub.ts';
import { makeWheel } from './wheel.ts';

/** The admin's visit; returns the memory of the hub, its proxy and people's servers (pihub-people.slice) with her server and a kernel running. */
export async function adminUsesHub(hub: string, user: string, password: string): Promise<{ memoryBytes: number; numpy: string }> {
  const s = new HubSession(hub, user);
  const login = await s.login(password);
  assert.equal(login.status, 302, `login answered ${login.status}: ${login.body.slice(0, 300)}`);
  await s.createToken(password);
  await s.startServer(600_000);
  const outText = await s.runCode(
    [
      'import getpass, numpy',
      'x = numpy.ones((64, 64)) @ numpy.ones(64) @ numpy.ones(64)',
      'print("user", getpass.getuser())',
      'print("numpy", numpy.__version__)',
      'print("blas", sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l}))',
      'print("sum", int(x))',
      'import subprocess',
      'print("memory", sum(int(v) for v in subprocess.run(["systemctl", "show", "jupyterhub", "jupyterhub-proxy", "pihub-people.slice", "-p", "MemoryCurrent", "--value"], capture_output=True, text=True).stdout.split()))',
    ].join('\n'),
  );
  assert.match(outText, new RegExp(`^user ${user}$`, 'm'));
  assert.match(outText, /^numpy 2\./m);
  assert.match(outText, /openblas/i);
  assert.match(outText, /^sum 4096$/m);
  const admin = await s.json('/hub/api/users');
  assert.equal(admin.status, 200);
  const page = await s.request('/hub/admin');
  assert.equal(page.status, 200);
  const lab = await s.page('/hub/');
  assert.equal(lab.status, 200, `JupyterLab at ${lab.url}`);
  assert.match(lab.url, new RegExp(`^/user/${user}/lab`), 'the hub sends a logged-in user to JupyterLab');
  assert.match(lab.body, /JupyterLab/);
  return { memoryBytes: Number(/^memory (\d+)$/m.exec(outText)?.[1]), numpy: /^numpy (\S+)$/m.exec(outText)![1]! };
}

/** A non-admin's visit: pip install --user of a wheel she uploads, no admin page, a terminal. */
export async function personUsesHub(hub: string, user: string, password: string): Promise<void> {
  const s = new HubSession(hub, user);
  assert.equal((await s.login(password)).status, 302);
  await s.createToken(password);
  await s.startServer(600_000);
  const wheel = makeWheel('pihub_e2e_probe', '1.0', 'def answer():\n    return 42\n');
  assert.equal(await s.upload(wheel.name, wheel.data), 201);
  const text = await s.runCode(
    `import subprocess, sys\nr = subprocess.run([sys.executable, "-m", "pip", "install", "--user", "--no-index", "${wheel.name}"], capture_output=True, text=True)\nprint(r.stdout[-500:], r.stderr[-800:])\nimport importlib, site\nimportlib.invalidate_caches()\nsys.path.insert(0, site.getusersitepackages())\nimport pihub_e2e_probe\nprint("answer", pihub_e2e_probe.answer(), pihub_e2e_probe.__file__)\nimport getpass\nprint("user", getpass.getuser())`,
  );
  assert.match(text, new RegExp(`^answer 42 /home/${user}/\\.local/lib/python3\\.\\d+/site-packages/pihub_e2e_probe`, 'm'));
  assert.match(text, new RegExp(`^user ${user}$`, 'm'));
  assert.equal((await s.json('/hub/api/users')).status, 403);
  assert.equal((await s.request('/hub/admin')).status, 403);
  const screen = await s.terminal('echo "term-$(id -un)-$((6*7))"', new RegExp(`term-${user}-42`));
  assert.match(screen, new RegExp(`term-${user}-42`));
}
