# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/split.py (instag-agent tests).  Same command line as
# process.py; only rewrites transforms_{train,val}.json with the last 301
# frames as the validation set (train = first N - 301 frames).
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import glob  # noqa: E402
import argparse  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402
from process import imread_size, read_track_params, write_transforms  # noqa: E402


def save_transforms(base_dir, ori_imgs_dir):
    print(f'[INFO] ===== save transforms =====')
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    h, w = imread_size(image_paths[0])
    valid_num, focal = read_track_params(base_dir)
    train_val_split = valid_num - 25 * 12 - 1  # take the last 12s as valid set.
    write_transforms(base_dir, w, h, focal, valid_num, train_val_split)
    print(f'[INFO] ===== finished saving transforms =====')


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('path', type=str, help="path to video file")
    parser.add_argument('--task', type=int, default=-1, help="-1 means all")
    parser.add_argument('--asr', type=str, default='deepspeech', help="wav2vec or deepspeech")
    opt = parser.parse_args()
    ctl = fk.control("split")

    def boom():
        raise RuntimeError("split failed (fake)")
    ctl.start(boom)

    base_dir = os.path.dirname(opt.path)
    ori_imgs_dir = os.path.join(base_dir, 'ori_imgs')
    for d in ('ori_imgs', 'parsing', 'gt_imgs', 'torso_imgs'):
        os.makedirs(os.path.join(base_dir, d), exist_ok=True)
    if opt.task == -1 or opt.task == 9:
        save_transforms(base_dir, ori_imgs_dir)
    ctl.progress(1.0, boom)
