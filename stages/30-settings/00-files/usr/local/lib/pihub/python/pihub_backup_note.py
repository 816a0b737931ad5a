"""The backup's status on the hub's home page, for admins (docs/backup.md).

The hub config passes for_admins as the template variable announcement_home: JupyterHub calls
it with the person who asks for the page and shows what it returns above their servers.
"""
import html
import importlib.machinery
import importlib.util

SCRIPT = '/usr/local/bin/pihub-backup'
_backup = None


def _pihub_backup():
    """pihub-backup itself, as a module: the status reads exactly as `pihub-backup status` says it."""
    global _backup
    if _backup is None:
        loader = importlib.machinery.SourceFileLoader('pihub_backup', SCRIPT)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader('pihub_backup', loader))
        loader.exec_module(module)
        _backup = module
    return _backup


def for_admins(user):
    """The status, a line each, for an admin; None (no announcement) for anyone else."""
    if user is None or not getattr(user, 'admin', False):
        return None
    try:
        backup = _pihub_backup()
        lines = backup.status_lines(backup.read_status(), backup.config())
    except Exception as err:  # the hub's pages never fail for the backup's sake
        lines = [f'Backups: the status cannot be read ({err}); see `pihub-backup status`']
    return '<br>'.join(html.escape(line) for line in lines)
