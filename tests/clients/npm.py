"""Node packages the client tests drive, installed by `npm ci` from a committed lockfile.

CI runs on a fresh clone, so each test session installs what it needs itself; a stamp of the
lockfile that was installed lets later sessions reuse `node_modules` while it is current.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

_STAMP = ".riposte-installed-lock"


def npm_installed(package_dir: Path) -> Path:
    """`package_dir/node_modules`, installed exactly as `package-lock.json` pins it."""
    npm = shutil.which("npm")
    assert npm is not None, f"npm is needed to install the client packages in {package_dir}"
    lock = hashlib.sha256((package_dir / "package-lock.json").read_bytes()).hexdigest()
    modules = package_dir / "node_modules"
    stamp = modules / _STAMP
    if not (stamp.exists() and stamp.read_text() == lock):
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=package_dir,
                       check=True, timeout=300)
        stamp.write_text(lock)
    return modules
