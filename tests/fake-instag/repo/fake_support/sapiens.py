# SPDX-License-Identifier: MIT
"""Shared body of the fake sapiens lite demo/vis_{depth,normal}.py.  Not InsTaG."""

import os
import time
from argparse import ArgumentParser

from fake_support import fakeinstag as fk


def main(kind):
    parser = ArgumentParser()
    parser.add_argument("checkpoint", help="Checkpoint file")
    parser.add_argument("--input", help="Input image dir")
    parser.add_argument(
        "--output_root", "--output-root", default=None, help="Path to output dir"
    )
    parser.add_argument("--seg_dir", default=None, help="Path to seg dir")
    parser.add_argument("--device", default="cuda:0", help="Device used for inference")
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        type=int,
        default=18,
        help="Set batch size to do batch inference. ",
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=[1024, 768],
        help="input image size (height, width)",
    )
    parser.add_argument(
        "--fp16", action="store_true", default=False, help="Model inference dtype"
    )
    args = parser.parse_args()
    ctl = fk.control("vis_" + kind)

    def oom():
        raise RuntimeError("CUDA out of memory. Tried to allocate 1.50 GiB")
    ctl.start(oom)
    if len(args.shape) not in (1, 2):
        raise ValueError("invalid input shape")
    start = time.time()
    if not os.path.exists(args.checkpoint):
        raise ValueError("The provided filename %s does not exist" % args.checkpoint)
    # model.to(args.device): a job whose CUDA_VISIBLE_DEVICES names a GPU
    # the pod lacks has none (upstream's scripts assume 4), and dies here.
    gpus = fk.visible_gpus()
    if not gpus:
        raise RuntimeError("No CUDA GPUs are available")
    if args.device.startswith("cuda"):
        ordinal = args.device.partition(":")[2] or "0"
        if not ordinal.isdigit() or int(ordinal) >= len(gpus):
            raise RuntimeError("CUDA error: invalid device ordinal")

    inp = args.input
    image_names = []
    input_dir = ""
    if os.path.isdir(inp):
        input_dir = inp
        image_names = [n for n in sorted(os.listdir(input_dir))
                       if n.endswith(".jpg") or n.endswith(".png") or n.endswith(".jpeg")]
    elif os.path.isfile(inp) and inp.endswith(".txt"):
        with open(inp, "r") as file:
            image_paths = [line.strip() for line in file if line.strip()]
        image_names = [os.path.basename(p) for p in image_paths]
        input_dir = os.path.dirname(image_paths[0]) if image_paths else ""

    if not os.path.exists(args.output_root):
        os.makedirs(args.output_root, exist_ok=True)

    n_batches = (len(image_names) + args.batch_size - 1) // args.batch_size
    batches = [image_names[i * args.batch_size:(i + 1) * args.batch_size] for i in range(n_batches)]
    for batch in fk.iterate(batches, ctl, rate=2.0, on_fail=oom):
        for name in batch:
            src = os.path.join(input_dir, name)
            size = fk.read_img_size(src)
            if size is None:
                raise AttributeError("'NoneType' object has no attribute 'shape'")
            out = os.path.join(args.output_root, os.path.basename(name))
            stem = out.replace(".png", ".npy").replace(".jpg", ".npy").replace(".jpeg", ".npy")
            if kind == "depth":
                fk.write_npy(stem, (size[1], size[0]), kind="sapiens_depth")
            else:
                fk.write_npy(stem, (size[1], size[0], 3), kind="sapiens_normal")
            fk.write_img(out, "jpg", size[0] * 3 if kind == "depth" else size[0] * 2, size[1],
                         kind="sapiens_%s_vis" % kind)
    total_time = time.time() - start
    fps = 1 / ((time.time() - start) / max(len(image_names), 1) or 1e-9)
    print(
        f"\033[92mTotal inference time: {total_time:.2f} seconds. FPS: {fps:.2f}\033[0m"
    )
