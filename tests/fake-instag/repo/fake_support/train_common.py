# SPDX-License-Identifier: MIT
"""Shared body of the fake train_face.py / train_mouth.py / train_fuse_con.py
and pretrain_{face,mouth}.py.  Not part of InsTaG."""

import os
import sys
from argparse import ArgumentParser

from arguments import ModelParams, PipelineParams, OptimizationParams
from utils.general_utils import safe_state
from fake_support import fakeinstag as fk
from fake_support import instag


def build_parser(extra):
    """extra: 'face_mouth' (adds --ip --port --long --pretrain_path),
    'fuse', or 'pretrain_face' / 'pretrain_mouth'."""
    parser = ArgumentParser(description="Training script parameters")
    lp = ModelParams(parser)
    op = OptimizationParams(parser)
    pp = PipelineParams(parser)
    if extra != "fuse":
        parser.add_argument('--ip', type=str, default="127.0.0.1")
        parser.add_argument('--port', type=int, default=6009)
    parser.add_argument('--debug_from', type=int, default=-1)
    parser.add_argument('--detect_anomaly', action='store_true', default=False)
    parser.add_argument("--test_iterations", nargs="+", type=int, default=[])
    parser.add_argument("--save_iterations", nargs="+", type=int, default=[])
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--checkpoint_iterations", nargs="+", type=int, default=[])
    parser.add_argument("--start_checkpoint", type=str, default=None)
    if extra == "face_mouth":
        parser.add_argument("--long", action='store_true', default=False)
        parser.add_argument("--pretrain_path", type=str, default=None)
    if extra == "pretrain_face":
        parser.add_argument('--share_audio_net', action='store_true', default=False)
    return parser, lp, op, pp


def parse(extra, name):
    parser, lp, op, pp = build_parser(extra)
    args = parser.parse_args(sys.argv[1:])
    args.save_iterations.append(args.iterations)
    ctl = fk.control(name)
    print("Optimizing " + args.model_path)
    safe_state(args.quiet)
    ctl.start(instag.cuda_unavailable)
    return args, lp.extract(args), op.extract(args), ctl


def evaluating(it, name, kind):
    l1 = 0.01 + fk.det_float(kind, name, it, "l1", hi=0.03)
    psnr = 26.0 + fk.det_float(kind, name, it, "psnr", hi=8.0)
    return lambda: print("\n[ITER {}] Evaluating {}: L1 {} PSNR {}".format(it, name, l1, psnr))


def say(text):
    return lambda: print(text)


def ckpt_writer(dataset, kind, it, paths, **meta):
    def run():
        for p in paths:
            fk.write_ckpt(p, kind=kind, iteration=it, source_path=dataset.source_path,
                          audio_extractor=dataset.audio_extractor, N_views=dataset.N_views,
                          sh_degree=dataset.sh_degree, **meta)
    return run


def ply_writer(dataset, sub, n):
    def run():
        instag.write_ply(os.path.join(dataset.model_path, "point_cloud",
                                      "iteration_{}".format(sub), "point_cloud.ply"), n)
    return run


def add(events, it, *actions):
    events.setdefault(it, []).extend(actions)
