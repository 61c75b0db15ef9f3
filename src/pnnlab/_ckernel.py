"""Compile-on-first-use C kernels, loaded with :mod:`ctypes` (docs/design.md, "Compiled kernels").

:func:`build` compiles a C source shipped inside a module with the system compiler (``$CC``, else ``cc``
or ``gcc``) into a shared library cached under ``$PNNLAB_CACHE_DIR/kernels`` (default
``$XDG_CACHE_HOME/pnnlab/kernels`` or ``~/.cache/pnnlab/kernels``), keyed by the source, the flags, the
compiler and the CPU (the code is built with ``-march=native``, retried without it where the compiler
lacks it). If the cache cannot be written, a per-user directory in the temporary directory is used, and
only if nobody else may write to it. Every failure is reported, never raised: the caller keeps its
PyTorch path and shows the reason.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["FLAGS", "build", "cache_dir", "private"]

FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC", "-std=gnu99")
_OFF = ("0", "off", "false", "no", "torch")


def cache_dir() -> Path:
    root = os.environ.get("PNNLAB_CACHE_DIR")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg or Path.home() / ".cache") / "pnnlab" / "kernels"


def _cpu_key() -> str:
    """What the compiled code depends on besides the source: the machine and its CPU flags (-march=native)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "model name")):
                    flags += line
                    if line.startswith("flags"):
                        break
    except OSError:
        pass
    return f"{platform.machine()}|{platform.system()}|{flags}"


def private(directory: Path, uid) -> bool:
    """True if ``directory`` belongs to user ``uid`` and nobody else may write to it (a shared temporary
    directory must not let another user plant the library this process loads). ``uid`` None: no POSIX
    user ids on this system, nothing to check."""
    try:
        st = directory.stat()
    except OSError:
        return False
    return uid is None or (st.st_uid == uid and not st.st_mode & 0o022)


def _compile(cc: str, source: str, name: str, directory: Path, target: Path) -> str | None:
    """Compile ``source`` into ``target`` (atomically); None on success, else why not."""
    suffix = target.suffix
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        out = Path(tmp) / f"{name}{suffix}"
        for flags in (FLAGS, tuple(f for f in FLAGS if f != "-march=native")):  # some compilers lack it
            proc = subprocess.run([cc, *flags, str(src), "-o", str(out)], capture_output=True, text=True,
                                  timeout=120)
            if proc.returncode == 0:
                os.replace(out, target)  # atomic: concurrent builders race harmlessly
                return None
    return f"the C compiler {cc} failed: {proc.stderr.strip()[:500]}"


def build(source: str, name: str, switch: str) -> tuple[ctypes.CDLL | None, str]:
    """``(library, status)``: the compiled, loaded ``source`` (``name`` names its files), or ``(None,
    why not)``. The environment variable ``switch`` set to off/0/false/no/torch disables it."""
    if os.environ.get(switch, "").lower() in _OFF:
        return None, f"disabled by {switch}"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler found (set $CC); the PyTorch paths are used"
    key = hashlib.sha256("\n".join([source, " ".join(FLAGS), cc, _cpu_key()]).encode()).hexdigest()[:20]
    suffix = ".dll" if sys.platform == "win32" else ".so"
    uid = os.getuid() if hasattr(os, "getuid") else None
    private_tmp = Path(tempfile.gettempdir()) / f"pnnlab-kernels-{uid if uid is not None else 'user'}"
    why = "no writable cache directory"
    for directory in (cache_dir(), private_tmp):
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            continue
        if directory == private_tmp and not private(directory, uid):
            why = f"{directory} is not a private directory of this user; not loading code from it"
            continue
        target = directory / f"{name}_{key}{suffix}"
        if not target.exists():
            try:
                failed = _compile(cc, source, name, directory, target)
            except (OSError, subprocess.SubprocessError) as exc:
                why = f"could not build in {directory}: {exc}"
                continue
            if failed:
                return None, failed
        try:
            return ctypes.CDLL(str(target)), f"compiled kernel {target}"
        except OSError as exc:
            return None, f"could not load {target}: {exc}"
    return None, why
