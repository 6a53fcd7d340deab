"""The sandbox's syscall filter, compiled with libseccomp and handed to bubblewrap (``--seccomp``).

bubblewrap installs the filter after it has built the namespaces and mounts, just before it runs
the sandbox's pid 1, so it holds for every process of a run and can't be lifted (seccomp filters
are inherited and only ever added to). Everything is allowed except what a program in a sandbox
never needs and what container runtimes' default profiles refuse: loading kernel code, reboot,
swap, accounting, setting clocks, tracing or reading other processes (``ptrace``,
``process_vm_*``, ``kcmp``, ``pidfd_getfd``), ``bpf``, ``perf_event_open``, ``userfaultfd``,
file handles, the kernel keyrings (their quota is shared by every run of the same uid: one run
could make the others fail with EDQUOT), ``io_uring`` (it performs I/O without passing the
filter), and the new mount API. A refused call fails with EPERM, as it would for a process
without the privilege, so runtimes that probe (node's io_uring) fall back.

The same list is the coordinator container's seccomp profile
(``deploy/containers/seccomp-coordinator.json``; a unit test keeps the two equal).

libseccomp (Debian ``libseccomp2``) is reached through ctypes: five functions, no Python
package. The filter covers the native architecture and, on x86-64, the i386 and x32 ABIs,
which a program could otherwise use to reach the same calls under other numbers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform

DENIED_SYSCALLS: frozenset[str] = frozenset(
    {
        # kernel code, reboot, swap, accounting, kernel log
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "create_module", "reboot", "swapon", "swapoff", "acct", "syslog", "vhangup",
        "quotactl", "quotactl_fd", "nfsservctl", "uselib", "get_kernel_syms", "query_module",
        "lookup_dcookie", "iopl", "ioperm",
        # clocks
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
        # other processes and the kernel's insides
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
        "perf_event_open", "bpf", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
        # kernel keyrings
        "keyctl", "add_key", "request_key",
        # io_uring
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        # the new mount API
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    }
)  # fmt: skip

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ARCH_X86 = 0x40000003  # AUDIT_ARCH_I386
SCMP_ARCH_X32 = 0x4000003E  # AUDIT_ARCH_X86_64 with the x32 bit, as libseccomp names it


def _act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class SeccompUnavailableError(RuntimeError):
    """libseccomp is missing or refused to build the filter."""


def _libseccomp() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompUnavailableError(f"libseccomp is not installed ({exc})") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def compile_filter(denied: frozenset[str] = DENIED_SYSCALLS) -> bytes:
    """The BPF program bubblewrap's ``--seccomp FD`` reads: allow all, EPERM for ``denied``.
    Names this kernel's libseccomp doesn't know are skipped (they can't be called either)."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompUnavailableError("seccomp_init failed")
    try:
        if platform.machine() == "x86_64":
            for arch in (SCMP_ARCH_X86, SCMP_ARCH_X32):
                rc = lib.seccomp_arch_add(ctx, arch)
                if rc not in (0, -errno.EEXIST):
                    raise SeccompUnavailableError(f"seccomp_arch_add({arch:#x}) = {rc}")
        for name in sorted(denied):
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # __NR_SCMP_ERROR: not a syscall on this architecture
                continue
            rc = lib.seccomp_rule_add(ctx, _act_errno(errno.EPERM), number, 0)
            if rc != 0:
                raise SeccompUnavailableError(f"seccomp_rule_add({name}) = {rc}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc != 0:
                raise SeccompUnavailableError(f"seccomp_export_bpf = {rc}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            program = b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    if not program or len(program) % 8:  # struct sock_filter is 8 bytes
        raise SeccompUnavailableError(f"libseccomp exported {len(program)} bytes")
    return program
