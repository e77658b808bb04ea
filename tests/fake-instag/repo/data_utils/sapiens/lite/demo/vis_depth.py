# SPDX-License-Identifier: MIT
# Fake sapiens lite demo/vis_depth.py as vendored by InsTaG (instag-agent tests).
# `CHECKPOINT --input LIST.txt|DIR --output-root DIR [--seg_dir D] [--batch-size N]
# [--device cuda:0] [--shape H [W]] [--fp16]` writes <out>/<n>.npy and <n>.jpg.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))

from fake_support import sapiens  # noqa: E402

if __name__ == "__main__":
    sapiens.main("depth")
