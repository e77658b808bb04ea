# SPDX-License-Identifier: MIT
"""Optional dependency checks for the fake scripts.  Not part of InsTaG.

With FAKE_INSTAG_STRICT_DEPS=1 a script whose real counterpart imports a
package that environment.yml does not install (transformers, pytorch3d,
mmcv-full, tensorflow-gpu) fails with ModuleNotFoundError unless the pip /
mim shim recorded that package for the current conda env
($CONDA_DEFAULT_ENV, else "base") in $FAKE_INSTAG_STATE/pip/<env>.txt.
"""

import os
import re

from fake_support import fakeinstag as fk


def installed(pipname, env=None):
    env = env or os.environ.get("CONDA_DEFAULT_ENV") or "base"
    p = fk.state_dir("pip", env + ".txt")
    want = _norm(pipname)
    try:
        with open(p) as f:
            for line in f:
                if _norm(line.strip()) == want:
                    return True
    except OSError:
        pass
    return False


def _norm(spec):
    spec = spec.strip()
    m = re.search(r"[/#=]([A-Za-z0-9_.\-]+?)(?:\.git)?$", spec) if ("/" in spec or "#egg=" in spec) else None
    if m and "/" in spec:
        spec = m.group(1)
    spec = re.split(r"[<>=!~\[; ]", spec, 1)[0]
    return spec.lower().replace("_", "-")


def require(module, *pipnames):
    """Raise ModuleNotFoundError unless one of pipnames is recorded."""
    if os.environ.get("FAKE_INSTAG_STRICT_DEPS") != "1":
        return
    if not any(installed(p) for p in pipnames):
        raise ModuleNotFoundError("No module named '%s'" % module)
