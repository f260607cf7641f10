"""Running PostgreSQL when we are root: it refuses to, so its processes run as an unprivileged system user.

Everything here is a no-op for a normal user. As root we create the user once, hand it the data directory,
and make sure it can reach that directory and the server binaries, changing modes only where needed and
saying so.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.console import Reporter
from devstack.errors import DevstackError

POSTGRES_SYSTEM_USER = "billing-postgres"


@dataclass(frozen=True)
class SystemUser:
    """The unprivileged account a server runs as."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, object]:
        """``subprocess`` arguments that drop root for the child; ``extra_groups=[]`` drops root's groups too."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def running_as_root() -> bool:
    """True when the effective user is root (the CI and container case)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_system_user(name: str, say: Reporter) -> SystemUser:
    """Return the system user ``name``, creating it (no home, no login shell) if it does not exist yet."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
        command = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        command += ["--shell", shell, name]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DevstackError(
                f"cannot create system user {name!r} to run PostgreSQL as (it refuses to run as root): "
                f"{' '.join(command)} -> {result.stderr.strip() or result.returncode}"
            ) from None
        entry = pwd.getpwnam(name)
        say(f"created system user {name!r} (uid {entry.pw_uid}): PostgreSQL refuses to run as root")
    return SystemUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _group_ids(user: SystemUser) -> set[int]:
    return {user.gid} | {group.gr_gid for group in grp.getgrall() if user.name in group.gr_mem}


def _has(
    st: os.stat_result, user: SystemUser, groups: set[int], owner_bit: int, group_bit: int, other_bit: int
) -> bool:
    # Permission classes are exclusive: the owner class applies to the owner even when "other" would allow more.
    if st.st_uid == user.uid:
        return bool(st.st_mode & owner_bit)
    if st.st_gid in groups:
        return bool(st.st_mode & group_bit)
    return bool(st.st_mode & other_bit)


def ensure_traversable(path: Path, user: SystemUser, say: Reporter) -> list[Path]:
    """Make every ancestor of ``path`` searchable (x) by ``user``; returns the directories changed.

    Only directories that block the user get ``o+x`` (search, not listing), and each change is reported:
    pytest's 0700 ``/tmp/pytest-of-root`` is the usual one.
    """
    groups = _group_ids(user)
    changed: list[Path] = []
    for directory in reversed(path.resolve().parents):
        st = directory.stat()
        if _has(st, user, groups, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            continue
        directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
        say(f"chmod o+x {directory} (so {user.name} can reach {path})")
        changed.append(directory)
    return changed


def ensure_readable_tree(root: Path, user: SystemUser, say: Reporter) -> int:
    """Make the tree at ``root`` (the PostgreSQL install) readable by ``user``; returns how many entries changed.

    A pip install under a 077 umask leaves it root-only. Directories get ``o+rx``, files ``o+r`` (plus ``o+x``
    where the owner may execute).
    """
    ensure_traversable(root, user, say)
    groups = _group_ids(user)
    changed = 0
    for current, _dirs, files in os.walk(root):
        entries = [(Path(current), True)] + [(Path(current) / name, False) for name in files]
        for entry, is_dir in entries:
            st = entry.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            wanted = stat.S_IROTH | (stat.S_IXOTH if is_dir or st.st_mode & stat.S_IXUSR else 0)
            readable = _has(st, user, groups, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
            runnable = not (wanted & stat.S_IXOTH) or _has(st, user, groups, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
            if readable and runnable:
                continue
            entry.chmod(stat.S_IMODE(st.st_mode) | wanted)
            changed += 1
    if changed:
        say(f"made {changed} entries under {root} readable by {user.name}")
    return changed


def give_tree(path: Path, user: SystemUser, say: Reporter) -> None:
    """Make ``user`` the owner of ``path`` and everything under it (only when the top is owned by someone else)."""
    if path.stat().st_uid == user.uid:
        return
    for current, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(Path(current) / name, user.uid, user.gid)
    os.chown(path, user.uid, user.gid)
    say(f"chown -R {user.name} {path}")
