# pihub's spawner: each person's JupyterLab, with its kernels and terminals, runs in a systemd
# unit of its own (pihub-server-NAME.service, started with systemd-run) instead of inside the
# hub's service, so that
#  - a runaway kernel meets its own memory limit (MemoryMax=) and is killed there, while the hub,
#    the proxy and everyone else keep working (OOMPolicy=continue: only the killed process goes,
#    the server stays and JupyterLab offers to restart the kernel);
#  - all servers together stay inside pihub-people.slice, whose limit leaves the system, the hub
#    and its proxy their share of the Pi's memory;
#  - a restart of the hub (a package upgrade does that) leaves everyone's server running: the
#    hub finds the unit again from the state it keeps in its database;
#  - the hub refuses a new server while the Pi has no room for it, with a page that says so.
# The sizes come from the Pi's memory when the hub starts, unless the config gives them
# (pihub_memory.sizes() in /root/jupyterhub_config.py, which says how).
import asyncio
import os
import pwd
import re

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from tornado import web
from traitlets import Integer, Unicode

from pihub_memory import MIN_LIMIT_MIB, PERSON_MIB, SLICE, meminfo_mib

ENV_DIR = '/run/pihub/servers'


def unit_escape(name):
    """A user name as a part of a unit name, escaped as systemd-escape does it."""
    out = []
    for i, ch in enumerate(name):
        if re.fullmatch(r'[A-Za-z0-9:_]', ch) or (ch == '.' and i > 0):
            out.append(ch)
        elif ch == '-':
            out.append('\\x2d')
        else:
            out.extend(f'\\x{b:02x}' for b in ch.encode())
    return ''.join(out)


def env_file_value(value):
    """A value as a double-quoted string of a systemd EnvironmentFile."""
    if '\n' in value or '\r' in value or '\0' in value:
        raise ValueError('an environment value with a line break or NUL')
    return '"' + re.sub(r'(["\\$`])', r'\\\1', value) + '"'


async def run(*cmd):
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(errors='replace'), err.decode(errors='replace')


class PihubSpawner(LocalProcessSpawner):
    memory_limit_mib = Integer(MIN_LIMIT_MIB, config=True, help="MemoryMax of each server in MiB (the hub's config sets it)")
    cpu_weight = Integer(100, config=True, help="CPUWeight of each server (the hub's is higher)")
    unit = Unicode('')

    @property
    def unit_name(self):
        server = f'-{unit_escape(self.name)}' if self.name else ''
        return f'pihub-server-{unit_escape(self.user.name)}{server}.service'

    def load_state(self, state):
        super().load_state(state)
        self.unit = state.get('unit', '')

    def get_state(self):
        state = super().get_state()
        if self.unit:
            state['unit'] = self.unit
        return state

    def clear_state(self):
        super().clear_state()
        self.unit = ''

    async def start(self):
        limit_mib = self.memory_limit_mib
        # Room for one more person: what the kernel can hand out now without swapping.
        free = meminfo_mib('MemAvailable')
        if free < PERSON_MIB:
            raise web.HTTPError(
                503,
                f'This Pi has no memory left for another JupyterLab: {free} MiB free, about {PERSON_MIB} MiB needed. '
                'Try again when someone has stopped their server (File > Hub Control Panel > Stop My Server).',
            )
        if self.port == 0:
            self.port = random_port()
        cmd = [*self.cmd, *self.get_args()]
        env = self.get_env()
        user = pwd.getpwnam(self.user.name)
        unit = self.unit_name
        # systemd reads the environment (it holds the server's hub token) from a file only root
        # can read; a unit's own Environment= would show it to every account on the Pi.
        os.makedirs(ENV_DIR, mode=0o700, exist_ok=True)
        env_file = os.path.join(ENV_DIR, unit.replace('\\', '_') + '.env')
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            for key, value in env.items():
                f.write(f'{key}={env_file_value(str(value))}\n')
        self.log.info('Spawning %s in %s (MemoryMax %d MiB)', ' '.join(cmd), unit, limit_mib)
        # A unit of a server that failed earlier is in the way of the new one.
        await run('systemctl', 'reset-failed', unit)
        try:
            code, out, err = await run(
                'systemd-run', '--quiet', '--collect', f'--unit={unit}', f'--slice={SLICE}',
                f'--description=JupyterLab of {self.user.name} (pihub)',
                f'--uid={self.user.name}', f'--working-directory={user.pw_dir}',
                '--property=Type=exec', f'--property=EnvironmentFile={env_file}',
                # The zram swap (stage 26) is shared: a server may put at most half its limit there,
                # so a runaway kernel is killed at 1.5 times the limit instead of filling it.
                f"--property=MemoryMax={limit_mib}M", f'--property=MemorySwapMax={limit_mib // 2}M',
                f'--property=CPUWeight={self.cpu_weight}',
                '--property=OOMPolicy=continue', '--property=TimeoutStopSec=30s',
                '--', *cmd,
            )
        finally:
            # Type=exec: systemd has read the file once systemd-run returns.
            os.unlink(env_file)
        if code != 0:
            raise RuntimeError(f'systemd-run could not start {unit}: {err.strip() or out.strip()}')
        self.unit = unit
        return (self.ip or '127.0.0.1', self.port)

    async def poll(self):
        if not self.unit:
            return 0
        code, out, _ = await run('systemctl', 'show', '--property=ActiveState', '--property=ExecMainStatus', self.unit)
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        if props.get('ActiveState') in ('active', 'activating', 'reloading', 'deactivating'):
            return None
        return int(props.get('ExecMainStatus') or 0)

    async def stop(self, now=False):
        if self.unit:
            await run('systemctl', 'stop', self.unit)
