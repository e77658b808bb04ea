# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/face_tracking/convert_BFM.py (instag-agent tests).
# Run from data_utils/face_tracking: reads 3DMM/01_MorphableModel.mat (the
# licensed Basel Face Model 2009, copied in by the user), 3DMM/topology_info.npy
# and 3DMM/exp_info.npy (prepare.sh); writes 3DMM/3DMM_info.npy.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from fake_support import fakeinstag as fk  # noqa: E402

ctl = fk.control("convert_BFM")
ctl.start(lambda: (_ for _ in ()).throw(MemoryError()))


def loadmat(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    with open(path, "rb") as f:
        head = f.read(128)
    if not head.startswith(b"MATLAB 5.0 MAT-file"):
        raise ValueError("Unknown mat file type, version 0, 0")
    return head


def npload(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)


original_BFM = loadmat("3DMM/01_MorphableModel.mat")
npload("3DMM/topology_info.npy")
npload("3DMM/exp_info.npy")
ctl.progress(0.5, lambda: (_ for _ in ()).throw(MemoryError()))
fk.write_npy("3DMM/3DMM_info.npy", (), dtype="object", content="3DMM_info")
ctl.progress(1.0, lambda: (_ for _ in ()).throw(MemoryError()))
