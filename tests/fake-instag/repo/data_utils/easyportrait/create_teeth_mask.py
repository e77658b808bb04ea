# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/easyportrait/create_teeth_mask.py (instag-agent tests).
# `datset [--config CFG] [--checkpoint PTH]`: reads datset/ori_imgs/*.jpg and
# writes datset/teeth_mask/<n>.npy.  Needs the config file and fpn-fp-512.pth.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from argparse import ArgumentParser  # noqa: E402
import glob  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import instag  # noqa: E402
from fake_support import deps  # noqa: E402


def main():
    parser = ArgumentParser()
    parser.add_argument('datset', help='Image file')
    parser.add_argument('--config', default="./data_utils/easyportrait/local_configs/easyportrait_experiments_v2/fpn-fp/fpn-fp.py", help='Config file')
    parser.add_argument('--checkpoint', default="./data_utils/easyportrait/fpn-fp-512.pth", help='Checkpoint file')
    args = parser.parse_args()
    deps.require("mmcv", "mmcv-full", "mmcv")
    ctl = fk.control("create_teeth_mask")
    ctl.start(instag.cuda_unavailable)

    if not os.path.isfile(args.config):
        raise FileNotFoundError('file "%s" does not exist' % os.path.abspath(args.config))
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'{args.checkpoint} can not be found.')
    print("load checkpoint from local path: %s" % args.checkpoint)

    dataset_path = os.path.join(args.datset, 'ori_imgs')
    out_path = os.path.join(args.datset, 'teeth_mask')
    os.makedirs(out_path, exist_ok=True)

    for file in fk.iterate(glob.glob(os.path.join(dataset_path, '*.jpg')), ctl, rate=12.0,
                           on_fail=instag.cuda_oom):
        size = fk.read_img_size(file) or (512, 512)
        fk.write_npy(file.replace('jpg', 'npy').replace('ori_imgs', 'teeth_mask'),
                     (size[1], size[0]), dtype="bool", kind="teeth_mask")


if __name__ == '__main__':
    main()
