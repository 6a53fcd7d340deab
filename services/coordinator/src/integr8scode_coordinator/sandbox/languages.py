"""The language table: how each language is invoked inside the sandbox and how versions match.

Every interpreter reads the script from a file in the sandbox's private working directory
(``/work``), runs with an empty environment and ignores any user or site configuration:

- python: ``python3 -I -S -B -u main.py`` — isolated mode (no ``PYTHON*`` variables, no user
  site, script dir not on ``sys.path`` beyond itself), no ``site`` import (stdlib only), no
  bytecode writes, unbuffered so output produced before a kill is not lost.
- javascript: ``node --max-old-space-size=<¾ of the memory limit> main.js`` — V8 fails with
  "JavaScript heap out of memory" before the kernel has to kill it.
- bash: ``bash --noprofile --norc main.sh``.
- ruby: ``ruby --disable-gems main.rb``; perl: ``perl main.pl``; lua: ``luaX.Y main.lua``
  (every Lua Debian has); php: ``php -n -d display_errors=stderr -d memory_limit=<limit>M
  main.php`` (no php.ini: the built-in extensions only).

Compiled languages (``LanguageSpec.build``) run in two phases (``compile_phase``): the compiler
reads the script in ``/work`` and writes what it builds under ``BUILD_DIR``; those files become the
run phase's files in ``/work`` (``main`` for c, c++, go, rust; the classes for java; ``main.js``
for typescript), and the run phase starts them: ``/work/main``, ``java -cp /work Main``,
``node main.js``.

Versions: a runtime offers *short* versions (``"3.11"``, ``"20"``, ``"5.2"``: the part a
language keeps compatible). A request names one of those, or is more precise (``"3.11.2"``
matches ``"3.11"``; the patch level is not promised), or less precise (``"3"`` takes the newest
``3.x``), or empty (the default).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from integr8scode_coordinator.sandbox.model import SandboxLimits
from integr8scode_coordinator.sandbox.outcome import Limit

WORKDIR = "/work"
BUILD_DIR = "/tmp/build"  # noqa: S108 - inside the sandbox: the compile phase's own tmpfs
BINARY = f"{WORKDIR}/main"  # the program c, c++, go and rust builds, in the run phase
TSC = "/usr/share/nodejs/typescript/lib/tsc.js"  # Debian's node-typescript


def _python_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, "-I", "-S", "-B", "-u", script]


def node_heap_mb(limits: SandboxLimits) -> int:
    return max(16, limits.memory_mb * 3 // 4)


def _node_argv(interpreter: str, script: str, limits: SandboxLimits) -> list[str]:
    return [interpreter, f"--max-old-space-size={node_heap_mb(limits)}", script]


def _bash_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, "--noprofile", "--norc", script]


def _ruby_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, "--disable-gems", script]


def _php_argv(interpreter: str, script: str, limits: SandboxLimits) -> list[str]:
    # Errors on stderr (the CLI's default is stdout); PHP's own memory limit is the run's, so
    # its "Allowed memory size" message comes before the kernel has to kill.
    return [
        interpreter,
        "-n",
        "-d",
        "display_errors=stderr",
        "-d",
        f"memory_limit={limits.memory_mb}M",
        script,
    ]


def _plain_argv(interpreter: str, script: str, _: SandboxLimits) -> list[str]:
    return [interpreter, script]


def _binary_argv(_: str, __: str, ___: SandboxLimits) -> list[str]:
    return [BINARY]


def java_heap_mb(limits: SandboxLimits) -> int:
    return max(16, limits.memory_mb // 2)


def _java_argv(javac: str, _: str, limits: SandboxLimits) -> list[str]:
    # One GC thread, one JIT tier and one compiler thread: a JVM's threads are processes to the
    # run's process limit, and start-up dominates a judge's programs.
    return [
        f"{os.path.dirname(javac)}/java",
        f"-Xmx{java_heap_mb(limits)}m",
        "-Xss8m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:CICompilerCount=1",
        "-XX:ReservedCodeCacheSize=32m",
        "-XX:MaxMetaspaceSize=64m",
        "-Xshare:auto",
        "-cp",
        WORKDIR,
        "Main",
    ]


def _typescript_argv(node: str, _: str, limits: SandboxLimits) -> list[str]:
    return [node, f"--max-old-space-size={node_heap_mb(limits)}", f"{WORKDIR}/main.js"]


def _c_build(gcc: str, script: str, _: SandboxLimits) -> list[str]:
    return [gcc, "-std=gnu17", "-O2", "-pipe", "-o", f"{BUILD_DIR}/main", script, "-lm"]


def _cpp_build(gxx: str, script: str, _: SandboxLimits) -> list[str]:
    return [gxx, "-std=gnu++17", "-O2", "-pipe", "-o", f"{BUILD_DIR}/main", script]


def _go_build(go: str, script: str, _: SandboxLimits) -> list[str]:
    # GOPATH mode (no module, no network): the precompiled standard library in GOROOT/pkg is
    # the build cache every run shares read-only; GOCACHE is the run's own, on its tmpfs. cgo
    # stays on (gcc is bound): the precompiled library was built with it, and CGO_ENABLED=0
    # would rebuild net, net/http… on every run (3.9 s instead of 0.3 s for net/http).
    return [
        "/usr/bin/env",
        "GO111MODULE=off",
        "GOCACHE=/tmp/go-build",
        "GOPATH=/tmp/go",
        "GOTOOLCHAIN=local",
        "GOFLAGS=-buildvcs=false",
        go,
        "build",
        "-o",
        f"{BUILD_DIR}/main",
        script,
    ]


def _rust_build(rustc: str, script: str, _: SandboxLimits) -> list[str]:
    # Optimised like c and c++ (-O2): a hello world builds in ~10% more time (bench/languages.py
    # --variants), a judge's loops run many times faster. Linked by gcc named directly: ``cc``
    # is an /etc/alternatives link, not bound.
    return [
        rustc,
        "-O",
        "--edition=2021",
        "-C",
        "linker=/usr/bin/gcc",
        "-C",
        "strip=symbols",
        "-o",
        f"{BUILD_DIR}/main",
        script,
    ]


def _java_build(javac: str, script: str, _: SandboxLimits) -> list[str]:
    return [
        javac,
        "-J-XX:+UseSerialGC",
        "-J-XX:TieredStopAtLevel=1",
        "-J-Xshare:auto",
        "-encoding",
        "UTF-8",
        "-d",
        BUILD_DIR,
        script,
    ]


def _typescript_build(node: str, script: str, _: SandboxLimits) -> list[str]:
    return [
        node,
        TSC,
        "--target",
        "es2020",
        "--module",
        "commonjs",
        "--strict",
        "--skipLibCheck",
        "--pretty",
        "false",
        "--outDir",
        BUILD_DIR,
        script,
    ]


@dataclass(frozen=True)
class LanguageSpec:
    language: str
    file_name: str
    # Commands tried at start, in order of preference; the first one of each short version wins.
    commands: tuple[str, ...]
    version_pattern: re.Pattern[str]  # applied to ``<command> --version``
    short_parts: int  # how many leading components make the version clients see
    argv: Callable[[str, str, SandboxLimits], list[str]]
    markers: tuple[tuple[Limit, str], ...]  # stderr texts that mean a limit refused something
    # Arguments that make the interpreter print, one per line, data directories it reads at
    # run time that are not next to its binary or libraries (bound into the sandbox).
    data_dirs_args: tuple[str, ...] = ()
    version_args: tuple[str, ...] = ("--version",)
    # Host directories the toolchain reads (headers, the compiler's own programs), bound
    # read-only when they exist; ``home_levels``: bind the directory that many levels above the
    # binary too (a JDK's or GOROOT's home), with what its symlinks lead to.
    extra_dirs: tuple[str, ...] = ()
    home_levels: int = 0
    # The compile phase's command (None: an interpreted language); it writes under BUILD_DIR.
    build: Callable[[str, str, SandboxLimits], list[str]] | None = None
    diagnostics_on_stdout: bool = False  # the compiler's errors go to stdout (tsc)
    # Built and run once at start (``BubblewrapRunner.check_compilers``); prints ``ok``.
    probe_script: str | None = None

    @property
    def compiled(self) -> bool:
        return self.build is not None

    @property
    def script_path(self) -> str:
        return f"{WORKDIR}/{self.file_name}"

    def command(self, interpreter: str, limits: SandboxLimits) -> list[str]:
        return self.argv(interpreter, self.script_path, limits)

    def build_command(self, interpreter: str, limits: SandboxLimits) -> list[str]:
        if self.build is None:
            raise ValueError(f"{self.language} has no compile phase")
        return self.build(interpreter, self.script_path, limits)


_CC_DIRS = ("/usr/include", "/usr/lib/gcc", "/usr/libexec/gcc")
_CC_MARKERS = ((Limit.MEMORY, "virtual memory exhausted"), (Limit.MEMORY, "out of memory"))
_NATIVE_MARKERS = (
    (Limit.MEMORY, "memory allocation of"),
    (Limit.MEMORY, "std::bad_alloc"),
    (Limit.MEMORY, "fatal error: runtime: out of memory"),
    (Limit.PROCESSES, "failed to create new OS thread"),
    (Limit.PROCESSES, "failed to spawn thread"),
    (Limit.FILE_SIZE, ": file too large"),  # Go's spelling of EFBIG
)
_NODE_DATA_DIRS_ARGS = (
    "-e",
    'const v = process.config.variables, path = require("path"), fs = require("fs");'
    ' for (const rel of String(v.node_relative_path || "").split(":")) {'
    ' const dir = path.join(String(v.node_prefix || "/usr"), rel);'
    " if (rel && fs.existsSync(dir)) console.log(dir); }",
)
_NODE_MARKERS = (
    (Limit.MEMORY, "JavaScript heap out of memory"),
    (Limit.MEMORY, "Array buffer allocation failed"),
    (Limit.MEMORY, "Fatal process out of memory"),
    (Limit.MEMORY, "Fatal process OOM"),
    (Limit.PROCESSES, "spawn EAGAIN"),
    (Limit.FILE_SIZE, "EFBIG"),  # libuv's "EFBIG: file too large"
)


LANGUAGES: dict[str, LanguageSpec] = {
    spec.language: spec
    for spec in (
        LanguageSpec(
            language="python",
            file_name="main.py",
            commands=("/usr/bin/python3", "/usr/local/bin/python3", "python3"),
            version_pattern=re.compile(r"Python (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_python_argv,
            markers=(
                (Limit.MEMORY, "MemoryError"),
                (Limit.PROCESSES, "can't start new thread"),
                (Limit.PROCESSES, "BlockingIOError: [Errno 11]"),
            ),
            data_dirs_args=(
                "-I",
                "-S",
                "-c",
                "import sysconfig\nfor k in 'stdlib', 'platstdlib': print(sysconfig.get_path(k))",
            ),
        ),
        LanguageSpec(
            language="javascript",
            file_name="main.js",
            commands=("/usr/bin/node", "/usr/local/bin/node", "node", "nodejs"),
            version_pattern=re.compile(r"v(\d+\.\d+\.\d+)"),
            short_parts=1,
            argv=_node_argv,
            markers=_NODE_MARKERS,
            # Debian's node loads some builtins (acorn, cjs-module-lexer, undici) from its
            # module dirs (/usr/share/nodejs, ...): the build's ``node_relative_path``.
            data_dirs_args=_NODE_DATA_DIRS_ARGS,
        ),
        LanguageSpec(
            language="bash",
            file_name="main.sh",
            commands=("/usr/bin/bash", "/bin/bash", "bash"),
            version_pattern=re.compile(r"version (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_bash_argv,
            markers=(
                (Limit.MEMORY, "xmalloc: cannot allocate"),
                (Limit.PROCESSES, "fork: retry: Resource temporarily unavailable"),
                (Limit.PROCESSES, "fork: Resource temporarily unavailable"),
            ),
        ),
        LanguageSpec(
            language="ruby",
            file_name="main.rb",
            commands=("/usr/bin/ruby", "ruby"),
            version_pattern=re.compile(r"ruby (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_ruby_argv,
            markers=(
                (Limit.MEMORY, "failed to allocate memory (NoMemoryError)"),
                (Limit.PROCESSES, "Resource temporarily unavailable - fork"),
                (Limit.PROCESSES, "can't create Thread"),
            ),
            data_dirs_args=("--disable-gems", "-e", "puts $LOAD_PATH"),
        ),
        LanguageSpec(
            language="php",
            file_name="main.php",
            commands=("/usr/bin/php", "php"),
            version_pattern=re.compile(r"PHP (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_php_argv,
            markers=((Limit.MEMORY, "Allowed memory size of"), (Limit.MEMORY, "Out of memory")),
        ),
        LanguageSpec(
            language="perl",
            file_name="main.pl",
            commands=("/usr/bin/perl", "perl"),
            version_pattern=re.compile(r"\(v(\d+\.\d+\.\d+)\)"),
            short_parts=2,
            argv=_plain_argv,
            markers=((Limit.MEMORY, "Out of memory"),),
            data_dirs_args=("-e", 'print "$_\\n" for @INC'),
        ),
        LanguageSpec(
            language="lua",
            file_name="main.lua",
            commands=("/usr/bin/lua5.4", "/usr/bin/lua5.3", "/usr/bin/lua5.2", "/usr/bin/lua5.1"),
            version_pattern=re.compile(r"Lua (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_plain_argv,
            markers=((Limit.MEMORY, "not enough memory"),),
            version_args=("-v",),
        ),
        LanguageSpec(
            language="c",
            file_name="main.c",
            commands=("/usr/bin/gcc", "gcc"),
            version_pattern=re.compile(r"gcc\S* \(.*\) (\d+\.\d+\.\d+)"),
            short_parts=1,
            argv=_binary_argv,
            markers=(*_NATIVE_MARKERS, *_CC_MARKERS),
            extra_dirs=_CC_DIRS,
            build=_c_build,
            probe_script='#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n',
        ),
        LanguageSpec(
            language="c++",
            file_name="main.cpp",
            commands=("/usr/bin/g++", "g++"),
            version_pattern=re.compile(r"g\+\+\S* \(.*\) (\d+\.\d+\.\d+)"),
            short_parts=1,
            argv=_binary_argv,
            markers=(*_NATIVE_MARKERS, *_CC_MARKERS),
            extra_dirs=_CC_DIRS,
            build=_cpp_build,
            probe_script='#include <iostream>\nint main() { std::cout << "ok" << std::endl; }\n',
        ),
        LanguageSpec(
            language="go",
            file_name="main.go",
            # Debian's only: a /usr/local/go is the host's, not a package the sandbox may use.
            commands=("/usr/bin/go",),
            version_pattern=re.compile(r"go version go(\d+\.\d+(?:\.\d+)?)"),
            short_parts=2,
            argv=_binary_argv,
            markers=_NATIVE_MARKERS,
            version_args=("version",),
            extra_dirs=_CC_DIRS,  # cgo: gcc links net's resolver
            home_levels=1,
            build=_go_build,
            probe_script='package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("ok") }\n',
        ),
        LanguageSpec(
            language="rust",
            file_name="main.rs",
            commands=("/usr/bin/rustc",),  # Debian's, never a ~/.cargo toolchain
            version_pattern=re.compile(r"rustc (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_binary_argv,
            markers=(*_NATIVE_MARKERS, *_CC_MARKERS),
            extra_dirs=("/usr/lib/rustlib", *_CC_DIRS),  # its sysroot; it links with cc
            build=_rust_build,
            probe_script='fn main() { println!("ok"); }\n',
        ),
        LanguageSpec(
            language="java",
            file_name="Main.java",
            commands=("/usr/bin/javac", "javac"),
            version_pattern=re.compile(r"javac (\d+(?:\.\d+)*)"),
            short_parts=1,
            argv=_java_argv,
            markers=(
                (Limit.MEMORY, "java.lang.OutOfMemoryError"),
                (Limit.PROCESSES, "unable to create native thread"),
            ),
            home_levels=1,
            build=_java_build,
            probe_script=(
                "public class Main { public static void main(String[] a) "
                '{ System.out.println("ok"); } }\n'
            ),
        ),
        LanguageSpec(
            language="typescript",
            file_name="main.ts",
            commands=("/usr/bin/node", "/usr/bin/nodejs"),  # runs Debian's tsc and its output
            version_pattern=re.compile(r"Version (\d+\.\d+\.\d+)"),
            short_parts=2,
            argv=_typescript_argv,
            markers=_NODE_MARKERS,
            data_dirs_args=_NODE_DATA_DIRS_ARGS,
            version_args=(TSC, "--version"),
            extra_dirs=("/usr/share/nodejs/typescript",),
            build=_typescript_build,
            probe_script='const ok: string = "ok";\nconsole.log(ok);\n',
            diagnostics_on_stdout=True,
        ),
    )
}


def parse_version(spec: LanguageSpec, output: str) -> tuple[str, str] | None:
    """(full, short) from ``--version`` output: ``"Python 3.11.2"`` → ``("3.11.2", "3.11")``."""
    found = spec.version_pattern.search(output)
    if found is None:
        return None
    full = found.group(1)
    return full, ".".join(full.split(".")[: spec.short_parts])


def _parts(version: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return None


def match_version(requested: str, offered: Sequence[str], default: str) -> str | None:
    """The offered short version a request means, or None when nothing matches."""
    requested = requested.strip().removeprefix("v")
    if not requested:
        return default if default in offered else None
    if requested in offered:
        return requested
    wanted = _parts(requested)
    if wanted is None:
        return None
    candidates: list[tuple[tuple[int, ...], str]] = []
    for version in offered:
        have = _parts(version)
        if have is None:
            continue
        common = min(len(have), len(wanted))
        if have[:common] == wanted[:common]:
            candidates.append((have, version))
    return max(candidates)[1] if candidates else None
