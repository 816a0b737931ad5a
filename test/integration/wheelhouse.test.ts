// The stand-in for PyPI: wheels assembled from Debian's packages install JupyterHub,
// JupyterLab, the notebook server and numpy into a virtual environment with pip, offline, and
// they run there. Natively (the build machine's architecture), in a small Debian root of the
// same suite as the images, so the Python is the images' 3.13.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cache } from '../../build/cache/cache.ts';
import { hostArch } from '../../build/chroot/tools.ts';
import { downloadClosure } from '../helpers/apt.ts';
import { CACHE_DIR, E2E_ROOT } from '../helpers/build.ts';
import { STAND_IN_PACKAGES, STAND_IN_RUNTIME, standInDebs, WHEEL_PLATFORM, debianWheelhouse, lockFile, requiresToDist, withoutVersion } from '../helpers/wheelhouse.ts';
import { scratch } from '../helpers/tmp.ts';

const run = promisify(execFile);

test('egg-info requirements and version ranges, as the stand-in rewrites them', () => {
  assert.deepEqual(requiresToDist('alembic>=1.4\n\n[:python_version < "3.10"]\nimportlib_metadata>=3.6\n\n[test]\npytest\n\n[dev:sys_platform == "win32"]\npywin32\n'), [
    'alembic>=1.4',
    'importlib_metadata>=3.6; (python_version < "3.10")',
    'pytest; extra == "test"',
    'pywin32; (sys_platform == "win32") and extra == "dev"',
  ]);
  assert.equal(withoutVersion('pamela>=1.1.0; sys_platform != "win32"'), 'pamela; sys_platform != "win32"');
  assert.equal(withoutVersion('beautifulsoup4[html5lib] (>=4.0)'), 'beautifulsoup4[html5lib]');
  assert.equal(withoutVersion('tornado'), 'tornado');
});

test('a wheelhouse from Debian\'s packages installs the hub into a virtual environment with pip', { timeout: 30 * 60_000 }, async () => {
  const arch = hostArch();
  // The shared cache, made a pihub cache first (a folder of downloads alone would not be one).
  new Cache(CACHE_DIR).ensure();
  const debs = join(CACHE_DIR, 'debs', `trixie-${arch}`);
  mkdirSync(debs, { recursive: true });
  const closure = await downloadClosure({ arch, suite: 'trixie', packages: STAND_IN_PACKAGES, archives: debs });
  const wheels = await debianWheelhouse({
    debs: standInDebs(closure),
    out: scratch('pihub-wheels-'),
    // Extracted packages are kept between runs: a .deb's contents never change under its name.
    work: join(E2E_ROOT, `wheelhouse-extract-${arch}`),
    pythonTag: 'cp313',
    platformTag: WHEEL_PLATFORM[arch]!,
  });
  const byName = Object.fromEntries(wheels.map((w) => [w.name.toLowerCase(), w]));
  for (const [name, version] of [['jupyterhub', '5.2.1'], ['jupyterlab', '4.0.11'], ['notebook', '6.4.13'], ['numpy', '2.2.4']] as const) {
    assert.equal(byName[name]?.version, version, `${name} in the wheelhouse`);
  }
  assert.match(byName.numpy!.file, new RegExp(`numpy-2\\.2\\.4-cp313-cp313-${WHEEL_PLATFORM[arch]}\\.whl$`), 'numpy is compiled: a platform wheel');
  assert.match(byName.jupyterhub!.file, /jupyterhub-5\.2\.1-py3-none-any\.whl$/);
  const dir = byName.numpy!.file.replace(/\/[^/]+$/, '');
  writeFileSync(join(dir, 'requirements.txt'), lockFile(wheels));

  // A trixie root with Python, venv and the shared libraries the compiled wheels link to.
  const root = join(scratch('pihub-venvroot-'), 'root');
  await run('mmdebstrap', [
    '--mode=root', '--variant=apt', `--architectures=${arch}`, `--include=python3-venv,${STAND_IN_RUNTIME.join(',')}`,
    `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && mount --bind ${debs} "$1/var/cache/apt/archives"`,
    '--customize-hook=umount "$1/var/cache/apt/archives"',
    'trixie', root, 'http://deb.debian.org/debian',
  ], { maxBuffer: 64 * 1024 * 1024 });
  try {
    cpSync(dir, join(root, 'wheels'), { recursive: true });
    const inRoot = async (cmd: string) => (await run('chroot', [root, 'sh', '-c', `cd / && ${cmd}`], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' }, maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
    await inRoot('python3 -m venv /opt/jupyterhub');
    await inRoot('/opt/jupyterhub/bin/pip install -q --no-index --find-links /wheels -r /wheels/requirements.txt');
    assert.equal(await inRoot("find /opt/jupyterhub -name '*.so' -exec ldd {} + | grep 'not found' || true"), '', 'every shared library a compiled module needs is installed');
    assert.equal(await inRoot('/opt/jupyterhub/bin/jupyterhub --version'), '5.2.1');
    assert.equal(await inRoot('/opt/jupyterhub/bin/jupyterhub-singleuser --version'), '5.2.1');
    assert.equal(await inRoot('/opt/jupyterhub/bin/jupyter lab --version'), '4.0.11');
    assert.equal(await inRoot('/opt/jupyterhub/bin/jupyter notebook --version'), '6.4.13');
    assert.equal(
      await inRoot('/opt/jupyterhub/bin/python -c "import numpy; a = numpy.array([[2., 1.], [1., 3.]]); print(numpy.__version__, numpy.linalg.solve(a, [3., 5.]).round(6).tolist())"'),
      '2.2.4 [0.8, 1.4]',
    );
    // Only the environment: Debian's own copies are not installed in this root at all.
    assert.equal(await inRoot('/opt/jupyterhub/bin/python -c "import jupyterhub, sys; print(jupyterhub.__file__.startswith(sys.prefix))"'), 'True');
    assert.match(await inRoot('/opt/jupyterhub/bin/jupyter server extension list 2>&1'), /jupyterlab 4\.0\.11 .*OK/);
    // Data files under the environment's prefix, Debian's links to shared JavaScript resolved.
    assert.match(await inRoot('ls /opt/jupyterhub/share/jupyterhub/static/components'), /^jquery$/m);
    assert.match(await inRoot('ls /opt/jupyterhub/share/jupyterhub/static/components/jquery/dist'), /^jquery\.min\.js$/m);
    assert.match(await inRoot('ls /opt/jupyterhub/share/jupyter/lab/static'), /^index\.html$/m);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
