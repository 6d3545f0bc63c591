"""The seccomp filter of ftstudy's jail: system calls that model-written code has no use for and that open the
kernel's rarer paths, refused the way Flatpak refuses them (flatpak-run.c, setup_seccomp), compiled to a BPF
program by libseccomp and loaded by bubblewrap (`--seccomp FD`) just before the jail's Python starts.

Refused: tracing and reading other processes (ptrace, process_vm_*, pidfd_getfd, kcmp), new namespaces
(unshare, setns, clone with a CLONE_NEW* flag; clone3 answers ENOSYS, as under Flatpak, so that glibc falls back
to clone, whose flags a filter can read), mounts and the new mount API, keyrings, bpf, perf_event_open,
userfaultfd, io_uring, kernel modules, kexec, reboot, swap, clocks, personality changes, terminal injection
(TIOCSTI, TIOCLINUX) and socket families other than unix, inet, inet6 and netlink. Everything else is allowed:
the namespaces, the read-only view and the cgroup stay the boundary; this narrows what a kernel bug can be
reached through. The library: libseccomp's own Python binding (`seccomp`, Debian's python3-seccomp) where it is
importable, else `pyseccomp` (PyPI, the same API over libseccomp.so.2).

Example:
    >>> len(bpf_program()) % 8  # doctest: +SKIP
    0
"""
from __future__ import annotations

import errno
import functools
import tempfile

# Refused with EPERM, as a kernel without the feature or a process without the privilege would answer.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
    "syslog", "uselib", "acct", "quotactl", "lookup_dcookie", "name_to_handle_at", "open_by_handle_at",
    "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "fanotify_init",
    "move_pages", "mbind", "set_mempolicy", "migrate_pages", "modify_ldt",
)
# Answered ENOSYS (this kernel "has no such call"): callers fall back to an older call the filter can inspect.
MISSING = ("clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr")
CLONE_NEW = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
             "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
             "CLONE_NEWNET": 0x40000000}
TTY_IOCTLS = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (if_nameindex reads the loopback)
PER_LINUX = 0


class FilterUnavailable(RuntimeError):
    """libseccomp cannot be loaded here."""


def library():
    """libseccomp's Python API: its own binding where importable, else pyseccomp."""
    try:
        import seccomp  # type: ignore[import-not-found]

        return seccomp
    except ImportError:
        pass
    try:
        import pyseccomp

        return pyseccomp
    except (ImportError, OSError, RuntimeError) as exc:  # pyseccomp raises RuntimeError without libseccomp.so.2
        raise FilterUnavailable(f"libseccomp is not usable here ({exc}); install libseccomp2 "
                                "(apt-get install libseccomp2) and the Python package pyseccomp") from None


@functools.lru_cache(maxsize=None)
def bpf_program() -> bytes:
    """The filter as the BPF program bubblewrap reads from `--seccomp FD` (built once per process)."""
    sc = library()
    f = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        _rule(f, sc.ERRNO(errno.EPERM), name)
    for name in MISSING:
        _rule(f, sc.ERRNO(errno.ENOSYS), name)
    for flag in CLONE_NEW.values():
        _rule(f, sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for request in TTY_IOCTLS.values():
        _rule(f, sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    _rule(f, sc.ERRNO(errno.EPERM), "personality", sc.Arg(0, sc.NE, PER_LINUX))
    last = 0
    for family in SOCKET_FAMILIES:  # every family between two allowed ones, then everything above the last
        for other in range(last, family):
            _rule(f, sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.EQ, other))
        last = family + 1
    _rule(f, sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.GE, last))
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()


def _rule(f, action: int, name: str, *args) -> None:
    try:
        f.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError) as exc:  # a call this architecture does not have (iopl on arm64)
        if "clone" in name or name in ("ptrace", "unshare", "setns", "mount", "bpf", "keyctl"):
            raise FilterUnavailable(f"libseccomp refused the rule for {name} ({exc})") from None
