# pihub's memory sizes (docs/memory.md): what all people's servers together, and each one, may
# use on this Pi, and how many servers run at once. The hub's config reads them when the hub
# starts; this module is light (no JupyterHub), as the proxy's service reads that config too.
import os

# Measured on a booted card (docs/memory.md): the system with the hub and its proxy, idle,
# and one more person with JupyterLab and a numpy kernel.
SYSTEM_MIB = 400
PERSON_MIB = 175
# The smallest limit a person's server gets: JupyterLab and one kernel fit in it.
MIN_LIMIT_MIB = 256

SLICE = 'pihub-people.slice'


def meminfo_mib(field):
    """A /proc/meminfo figure (MemTotal, MemAvailable, SwapFree …) in MiB."""
    with open('/proc/meminfo') as f:
        for line in f:
            name, _, rest = line.partition(':')
            if name == field:
                return int(rest.split()[0]) // 1024
    raise RuntimeError(f'/proc/meminfo has no {field}')


def sizes(total_mib, limit_mib='auto', servers='auto'):
    """The memory sizes for a Pi with total_mib of RAM; a number instead of 'auto' is the config's own.

    people: what all servers together may use (the RAM less the system's share);
    limit: what one person's server may use (half of people's room: nobody can take it all);
    servers: how many servers may run at once (people's room over what one person needs).
    """
    people = max(PERSON_MIB, total_mib - SYSTEM_MIB)
    limit = max(MIN_LIMIT_MIB, people // 2) if limit_mib == 'auto' else int(limit_mib)
    return {
        'people_mib': max(people, limit),
        'limit_mib': limit,
        'servers': max(1, people // PERSON_MIB) if servers == 'auto' else int(servers),
    }


def limit_people(people_mib):
    """Set the limit of all servers together (pihub-people.slice) until the next boot."""
    os.spawnvp(os.P_WAIT, 'systemctl', ['systemctl', 'set-property', '--runtime', SLICE, f'MemoryMax={people_mib}M'])
