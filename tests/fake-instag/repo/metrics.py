# SPDX-License-Identifier: MIT
#
# Fake InsTaG metrics.py (instag-agent tests).  Like the real one it has no
# argparse: `python metrics.py <pred.mp4> <gt.mp4>`; extra arguments are
# ignored; an unreadable video gives zero frames and a ZeroDivisionError.
# Prints the frame count every 100 frames, then LMD (fan), PSNR, LPIPS (alex).
#

import sys

from fake_support import fakeinstag as fk

ctl = fk.control("metrics")

vid_path_1 = sys.argv[1]
vid_path_2 = sys.argv[2]


def frames_of(path):
    try:
        m = fk.read_media(path)
    except (OSError, fk.MediaError):
        return 0
    return m.frames if m.kind == "video" else 0


ctl.start(lambda: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))

n = min(frames_of(vid_path_1), frames_of(vid_path_2))
counter = 0
step = fk.stride_for(n, 50, 1)
while counter < n:
    counter += 1
    if counter % 100 == 0:
        print(counter)
    if counter % step == 0:
        ctl.progress(counter / float(n), lambda: (_ for _ in ()).throw(
            RuntimeError("CUDA error: out of memory")))

if counter == 0:
    raise ZeroDivisionError("division by zero")

key = (fk.sha256_file(vid_path_1), fk.sha256_file(vid_path_2))
print(f'LMD (fan) = {fk.det_float(key, "lmd", lo=2.2, hi=3.4):.6f}')
print(f'PSNR = {fk.det_float(key, "psnr", lo=28.0, hi=33.0):.6f}')
print(f'LPIPS (alex) = {fk.det_float(key, "lpips", lo=0.025, hi=0.06):.6f}')
