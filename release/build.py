"""Build the one-file executable: `python3 release/build.py` -> dist/kiro-gateway-<version>-<os>-<arch>.

Only Python 3.11+ (with its shared library, as distributions' and pyenv's builds have) and PyPI are
needed. The build gets a virtual environment of its own (build/binary-venv) holding the pinned
runtime dependencies and the `binary` extra of pyproject.toml, and nothing else: whatever else the
developer's environment has (the desktop extra's Qt, the test tools) cannot end up in the binary.
The package is taken from this checkout, not from an install. The result carries the console's
built assets and the tokenizer, and needs no Python where it runs; it is checked with `--version`
before this exits. `--print-path` prints where the binary goes and builds nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
VENV = BUILD / "binary-venv"
DIST = ROOT / "dist"
STATIC = ROOT / "kiro_gateway" / "console" / "static"

# Never in the binary: the desktop window's toolkits (the `desktop` command says it is not there),
# and the tools that only the tests and the type check use.
EXCLUDED = ["webview", "PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "tkinter", "_tkinter",
            "pytest", "_pytest", "hypothesis", "mypy", "mypyc", "importlinter", "grimp", "playwright", "IPython"]

# Imported by name at run time, so invisible to PyInstaller's import scan: every module of the
# package (uvicorn's `--workers` imports "kiro_gateway.cli:worker_app"), and the tokenizer, whose
# absence would not fail anything but would quietly turn counts into estimates.
COLLECTED = ["kiro_gateway"]
HIDDEN = ["anthropic_tokenizer", "anthropic_tokenizer.anthropic_tokenizer"]


def version() -> str:
    text = (ROOT / "kiro_gateway" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise SystemExit("release/build.py: no __version__ in kiro_gateway/__init__.py")
    return found.group(1)


def platform_tag() -> str:
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{system}-{machine}"


def binary_name() -> str:
    return f"kiro-gateway-{version()}-{platform_tag()}"


def binary_path() -> Path:
    return DIST / (binary_name() + (".exe" if sys.platform == "win32" else ""))


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"]["binary"])


def build_python() -> Path:
    """The build's own environment, created once and brought up to the pins on every build."""
    python = VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.exists():
        print(f"creating {VENV.relative_to(ROOT)}", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements()], check=True)
    return python


def pyinstaller_args() -> list[str]:
    work = BUILD / "pyinstaller"
    args = ["--onefile", "--noconfirm", "--log-level", "WARN", "--name", binary_name(),
            "--distpath", str(DIST), "--workpath", str(work), "--specpath", str(work),
            "--paths", str(ROOT),
            "--add-data", f"{STATIC}{os.pathsep}kiro_gateway/console/static"]
    if sys.platform.startswith("linux"):
        args.append("--strip")  # the libraries' debug symbols: 40 % of the size
    for package in COLLECTED:
        args += ["--collect-submodules", package]
    for module in HIDDEN:
        args += ["--hidden-import", module]
    for module in EXCLUDED:
        args += ["--exclude-module", module]
    return args + [str(ROOT / "release" / "entry.py")]


def check(binary: Path) -> None:
    """The binary answers --version with this checkout's version, in an environment with no Python."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(BUILD)} if os.name == "posix" else None
    out = subprocess.run([str(binary), "--version"], env=env, capture_output=True, text=True, timeout=60)
    expected = f"kiro-gateway {version()}"
    if out.returncode != 0 or out.stdout.strip() != expected:
        raise SystemExit(f"release/build.py: {binary} --version gave {out.stdout.strip()!r} {out.stderr.strip()!r}, "
                         f"not {expected!r} / 构建结果的 --version 不对")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="release/build.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--print-path", action="store_true", help="print where the binary goes; build nothing")
    args = p.parse_args(argv)
    if args.print_path:
        print(binary_path())
        return 0
    if not (STATIC / "index.html").is_file():
        raise SystemExit(f"release/build.py: {STATIC} has no index.html; build the console first "
                         "(npm ci && npm run build in console/) / 控制台文件缺失，请先在 console/ 中构建")
    started = time.monotonic()
    python = build_python()
    subprocess.run([str(python), "-m", "PyInstaller", *pyinstaller_args()], cwd=ROOT, check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    binary = binary_path()
    check(binary)
    size = binary.stat().st_size / 1e6
    print(f"built in {time.monotonic() - started:.0f} s, {size:.1f} MB / 已构建", file=sys.stderr, flush=True)
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
