# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/face_tracking/face_tracker.py (instag-agent tests).
# `--path D/ori_imgs --img_h H --img_w W --frame_num N`; needs 3DMM/3DMM_info.npy
# (convert_BFM.py) and 3DMM/keys_info.npy (prepare.sh) next to this file and
# <i>.lms for i < N; writes D/track_params.pt.  Like the real one it fails
# with fewer than 32 frames (light fitting uses a step of N // 32).
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import argparse  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import instag  # noqa: E402
from fake_support import deps  # noqa: E402

deps.require("pytorch3d", "pytorch3d")

dir_path = os.path.dirname(os.path.realpath(__file__))

parser = argparse.ArgumentParser()
parser.add_argument(
    "--path", type=str, default="obama/ori_imgs", help="idname of target person"
)
parser.add_argument("--img_h", type=int, default=512, help="image height")
parser.add_argument("--img_w", type=int, default=512, help="image width")
parser.add_argument("--frame_num", type=int, default=11000, help="image number")
args = parser.parse_args()
ctl = fk.control("face_tracker")
ctl.start(instag.cuda_unavailable)

num_frames = sum(1 for i in range(0, args.frame_num)
                 if os.path.isfile(os.path.join(args.path, str(i) + ".lms")))
if num_frames == 0:
    raise ValueError("need at least one array to stack")
for f in ("3DMM_info.npy", "keys_info.npy"):
    p = os.path.join(dir_path, "3DMM", f)
    if not os.path.exists(p):
        raise FileNotFoundError(2, "No such file or directory", p)

batch_size = 32
print(f'[INFO] fitting focal length...')
for focal in range(600, 1500, 100):
    print(focal, fk.det_float(focal, "lan", lo=3.0, hi=9.0), -fk.det_float(focal, "z", lo=4.0, hi=6.0))
    ctl.progress(0.3 * (focal - 500) / 900.0, instag.cuda_oom)
arg_focal = 1100
print("[INFO] find best focal:", arg_focal)
print(f'[INFO] coarse fitting...')
print(fk.det_float("coarse", lo=2.0, hi=3.0), -fk.det_float("coarse", "z", lo=4.0, hi=6.0))
print(f'[INFO] fitting light...')
step = int(num_frames / batch_size)
if step == 0:
    raise ZeroDivisionError("division by zero")
print(f'[INFO] fine frame-wise fitting...')
n_batches = int((num_frames - 1) / batch_size + 1)
for i in range(n_batches):
    print(str(i) + " of " + str(n_batches) + " done")
    ctl.progress(0.4 + 0.6 * (i + 1) / n_batches, instag.cuda_oom)
fk.write_text(os.path.join(os.path.dirname(args.path), "track_params.pt"),
              "FAKETORCH track_params frames=%d focal=%.1f h=%d w=%d\n"
              % (num_frames, float(arg_focal), args.img_h, args.img_w))
print("params saved")
