"""Byte-compile, with this (native) Python, what the target's py3compile calls asked for.

Usage: python3 py3compile-native.py TARGET_ROOT

During a foreign-architecture build pihub defers py3compile (see py3compile-defer.sh): each
call only writes its arguments to TARGET_ROOT/var/lib/pihub/py3compile.todo. This script
then does what py3compile (dh-python) would have done, with a Python of the same version
running natively: for `-p PACKAGE [DIR]...`, the package's .py files in the public
directories (/usr/lib/python3/dist-packages, /usr/lib/python3.X/...) or in the given
directories, minus the exclusions packages ship in /usr/share/python3/bcep/ and -X patterns;
timestamp-based byte code in __pycache__ beside each source, named for the Python that runs
on the Pi. Byte code does not depend on the architecture, only on the Python version, which
pihub checks before calling this.
"""

import importlib.util
import os
import py_compile
import re
import sys

PUBLIC_DIR_RE = re.compile(r'.*?/usr/lib/python(\d(?:.\d+)?)/(site|dist)-packages')
VERSION = sys.version_info[:2]


def in_range(vrange):
    """Does a dh-python version range such as '-3.6', '3.8-' or '3.9' include this Python?"""
    vrange = vrange.strip()
    if not vrange or vrange == '-':
        return True

    def parse(v):
        return tuple(int(x) for x in v.split('.')) if v else None

    if '-' in vrange:
        low, high = (parse(x) for x in vrange.split('-', 1))
        return (low is None or VERSION >= low) and (high is None or VERSION < high)
    return VERSION == parse(vrange)


def bcep_patterns(root):
    """Exclusions shipped by packages in /usr/share/python3/bcep/ that apply to this Python."""
    out = []
    bcep = root + '/usr/share/python3/bcep'
    if not os.path.isdir(bcep):
        return out
    for name in sorted(os.listdir(bcep)):
        if name.startswith('.'):
            continue
        with open(os.path.join(bcep, name), encoding='utf-8') as lines:
            for line in lines:
                if line.startswith('#') or not line.strip():
                    continue
                parts = line.rstrip('\n').split('|', 3)
                if len(parts) == 3:
                    parts.append('.*')
                type_, vrange, dname, pattern = parts
                if not in_range(vrange):
                    continue
                if type_ != 'file':
                    dname = dname.rstrip('/') + '/'
                out.append((type_, dname, re.compile(pattern)))
    return out


def excluded(path, patterns):
    for type_, dname, pattern in patterns:
        if not path.startswith(dname):
            continue
        rel = path[len(dname):]
        if type_ == 'dir' or (type_ == 'file' and path == dname):
            return True
        if type_ == 're' and (pattern.match(path) or pattern.match(rel)):
            return True
    return False


def package_files(root, package):
    info = root + '/var/lib/dpkg/info/'
    name = package.split(':')[0]
    candidates = [package + '.list', name + '.list']
    candidates += sorted(f for f in os.listdir(info) if f.startswith(name + ':') and f.endswith('.list'))
    for candidate in candidates:
        path = info + candidate
        if os.path.exists(path):
            with open(path, encoding='utf-8', errors='replace') as f:
                return [line.rstrip('\n') for line in f if line.rstrip('\n').endswith('.py')]
    raise SystemExit('py3compile-native: no file list for package %s' % package)


def parse_call(words):
    """py3compile's options: -p PKG, -V RANGE, -X REGEX, -O, -f, -q, -v; the rest are paths."""
    package, excludes, paths = None, [], []
    it = iter(words)
    for w in it:
        if w in ('-p', '--package'):
            package = next(it)
        elif w.startswith('--package='):
            package = w.split('=', 1)[1]
        elif w in ('-V',):
            next(it)
        elif w in ('-X', '--exclude'):
            excludes.append(re.compile(next(it)))
        elif w in ('-O', '-f', '--force', '-q', '--quiet', '-v', '--verbose'):
            pass
        else:
            paths.append(w)
    return package, excludes, paths


def files_for(root, words):
    package, excludes, paths = parse_call(words)
    if package and paths:
        files = [f for f in package_files(root, package) if any(f.startswith(p) for p in paths)]
    elif package:
        files = []
        for f in package_files(root, package):
            m = PUBLIC_DIR_RE.match(f)
            if m and m.group(1) in ('3', '%d.%d' % VERSION):
                files.append(f)
    else:
        files = []
        for p in paths:
            if os.path.isfile(root + p):
                files.append(p)
            for top, _dirs, names in os.walk(root + p):
                files += [os.path.join(top, n)[len(root):] for n in names if n.endswith('.py')]
    return [f for f in files if not any(x.match(f) for x in excludes)]


def main():
    root = sys.argv[1].rstrip('/')
    todo = root + '/var/lib/pihub/py3compile.todo'
    if not os.path.exists(todo):
        return 0
    patterns = bcep_patterns(root)
    wanted = []
    seen = set()
    with open(todo, encoding='utf-8') as f:
        for line in f:
            for path in files_for(root, line.split()):
                if path not in seen and not excluded(path, patterns):
                    seen.add(path)
                    wanted.append(path)
    compiled = failed = 0
    for path in wanted:
        source = root + path
        if not os.path.isfile(source):
            continue
        cfile = root + importlib.util.cache_from_source(path)
        try:
            py_compile.compile(source, cfile=cfile, dfile=path, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
            compiled += 1
        except py_compile.PyCompileError as err:
            # py3compile reports these and carries on; so do we.
            print('py3compile-native: %s' % err.msg.strip().splitlines()[-1], file=sys.stderr)
            failed += 1
    os.remove(todo)
    print('py3compile-native: %d files byte-compiled natively (%d not compilable, as with py3compile)' % (compiled, failed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
