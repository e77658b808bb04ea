# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/face_parsing/test.py (instag-agent tests).
# `--respath DIR --imgpath DIR [--modelpath data_utils/face_parsing/79999_iter.pth]`
# writes <respath>/<n>.png for every <n>.jpg/.png in imgpath.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import instag  # noqa: E402


def evaluate(respth='./res/test_res', dspth='./data', cp='model_final_diss.pth', ctl=None):
    Path(respth).mkdir(parents=True, exist_ok=True)
    print(f'[INFO] loading model...')
    instag.torch_load(cp)
    image_paths = sorted(os.listdir(dspth))
    for image_path in fk.iterate(image_paths, ctl, rate=40.0, on_fail=instag.cuda_oom):
        if image_path.endswith('.jpg') or image_path.endswith('.png'):
            size = fk.read_img_size(os.path.join(dspth, image_path))
            if size is None:
                raise OSError("cannot identify image file %r" % os.path.join(dspth, image_path))
            out = str(int(image_path[:-4])) + '.png'
            fk.write_img(os.path.join(respth, out), "png", size[0], size[1], kind="parsing")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument('--respath', type=str, default='./result/', help='result path for label')
    parser.add_argument('--imgpath', type=str, default='./imgs/', help='path for input images')
    parser.add_argument('--modelpath', type=str, default='data_utils/face_parsing/79999_iter.pth')
    args = parser.parse_args()
    ctl = fk.control("test")
    ctl.start(instag.cuda_unavailable)
    evaluate(respth=args.respath, dspth=args.imgpath, cp=args.modelpath, ctl=ctl)
