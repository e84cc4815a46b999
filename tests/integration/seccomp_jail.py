"""The system-call confinement of systemd/veil.service, applied without systemd.

``unit_policy()`` reads the unit's ``SystemCallFilter=``, ``SystemCallErrorNumber=``, ``MemoryDenyWriteExecute=``
and ``RestrictAddressFamilies=`` lines and expands the ``@groups`` with ``systemd-analyze syscall-filter`` (so
the list is the installed systemd's, at test time). ``python -m tests.integration.seccomp_jail POLICY.json --
COMMAND...`` loads that policy with libseccomp (pyseccomp, over the system's libseccomp2) and then execs COMMAND,
so the interpreter's start, every thread and every child (fork, spawn) run under it, as under systemd.

What is emulated, after systemd 252 (src/shared/seccomp-util.c):
- ``SystemCallFilter=``: lines read in order; an allow line adds, a ``~`` line removes. A call outside the list
  kills the process with SIGSYS (systemd's action without ``SystemCallErrorNumber=``), or fails with that error
  number when it is set. Calls newer than systemd's own table are refused too, as in 252 (systemd 255 and
  later answer ENOSYS for those: the jail is the stricter).
- ``MemoryDenyWriteExecute=yes``: ``mmap`` asking for PROT_WRITE|PROT_EXEC, ``mprotect``/``pkey_mprotect`` asking
  for PROT_EXEC and ``shmat`` with SHM_EXEC fail with EPERM (systemd 252's seccomp rules); where the kernel has it
  (Linux 6.3+), also ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)``, which systemd 254 and later use instead.
- ``RestrictAddressFamilies=``: ``socket()`` for any other family fails with EAFNOSUPPORT.
The other namespaces and mounts of the unit (ProtectSystem=, PrivateTmp=, ProtectProc=, ...) are not emulated.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import mmap
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
SHM_EXEC = 0o100000
AF_MAX = 46  # Linux 6.x: address families are below this


@dataclass(frozen=True)
class Policy:
    allow: tuple[str, ...]  # system calls allowed, by name
    error_number: int | None  # None: a refused call kills the process (SIGSYS)
    deny_write_execute: bool
    address_families: tuple[int, ...] | None  # None: any family

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: Path) -> "Policy":
        data = json.loads(path.read_text())
        families = data["address_families"]
        return cls(tuple(data["allow"]), data["error_number"], data["deny_write_execute"],
                   None if families is None else tuple(families))


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """Each ``Key=value`` line of the unit, values in order of appearance (comments and sections left out)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@functools.lru_cache(maxsize=None)
def expand(entry: str, analyze: str) -> frozenset[str]:
    """The system calls of ``entry``: itself, or a ``@group`` expanded (recursively) by systemd-analyze."""
    if not entry.startswith("@"):
        return frozenset({entry})
    listing = subprocess.run([analyze, "syscall-filter", "--no-pager", entry], capture_output=True, text=True,
                             check=True, timeout=60).stdout.splitlines()
    if not listing or listing[0].strip() != entry:
        raise ValueError(f"systemd-analyze does not know {entry}: {listing[:2]}")
    names: set[str] = set()
    for line in listing[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            names |= expand(item, analyze)
    return frozenset(names)


def unit_policy(unit: Path, analyze: str) -> Policy:
    settings = unit_settings(unit)
    allowed: set[str] = set()
    lines = settings.get("SystemCallFilter", [])
    if not lines or lines[0].startswith("~"):
        raise ValueError("the unit has no SystemCallFilter= allow list")
    for line in lines:
        deny = line.startswith("~")
        for entry in line.removeprefix("~").split():
            if ":" in entry:
                raise ValueError(f"per-call error numbers ({entry}) are not emulated")
            allowed = allowed - expand(entry, analyze) if deny else allowed | expand(entry, analyze)
    [number] = settings.get("SystemCallErrorNumber", ["kill"])[-1:]
    families = settings.get("RestrictAddressFamilies", [])[-1:]
    return Policy(
        allow=tuple(sorted(allowed)),
        error_number=None if number == "kill" else int(getattr(errno, number, number)),
        deny_write_execute=settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes",
        address_families=tuple(getattr(socket, f) for f in families[0].split()) if families else None,
    )


def systemd_analyze() -> str | None:
    return shutil.which("systemd-analyze")


def _set_mdwe() -> bool:
    """prctl(PR_SET_MDWE): False where the kernel predates it (EINVAL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0:
        return True
    if ctypes.get_errno() == errno.EINVAL:
        return False
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def apply(policy: Policy) -> list[str]:
    """Load the policy into this process (for good); the names this libseccomp does not know."""
    import pyseccomp as seccomp

    if policy.deny_write_execute:
        _set_mdwe()
        mdwe = seccomp.SyscallFilter(seccomp.ALLOW)
        write_execute = mmap.PROT_WRITE | mmap.PROT_EXEC
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, write_execute,
                                                                      write_execute))
        for call in ("mprotect", "pkey_mprotect"):
            mdwe.add_rule(seccomp.ERRNO(errno.EPERM), call, seccomp.Arg(2, seccomp.MASKED_EQ, mmap.PROT_EXEC,
                                                                         mmap.PROT_EXEC))
        mdwe.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
        mdwe.load()
    if policy.address_families is not None:
        families = seccomp.SyscallFilter(seccomp.ALLOW)
        for family in sorted(set(range(AF_MAX)) - set(policy.address_families)):
            families.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
        families.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, AF_MAX))
        families.load()
    refused = seccomp.KILL_PROCESS if policy.error_number is None else seccomp.ERRNO(policy.error_number)
    allow_list = seccomp.SyscallFilter(refused)
    unknown = []
    for name in policy.allow:
        try:
            allow_list.add_rule(seccomp.ALLOW, name)
        except OSError:  # a name this libseccomp cannot resolve: systemd skips those too
            unknown.append(name)
    allow_list.load()  # last: the filters above need seccomp(2) and prctl(2) while they load
    return unknown


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m tests.integration.seccomp_jail POLICY.json -- COMMAND...")
    apply(Policy.load(Path(argv[0])))
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
