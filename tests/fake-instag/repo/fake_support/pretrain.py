# SPDX-License-Identifier: MIT
"""Shared body of the fake pretrain_face.py / pretrain_mouth.py.  Not InsTaG."""

import copy
import os
from argparse import Namespace

from fake_support import instag
from fake_support.train_common import evaluating, say, add

DATA_LIST = ["macron", "shaheen", "may", "jaein", "obama1"]


def run(args, dataset, opt, ctl, kind):
    n = len(DATA_LIST)
    it_total = opt.iterations
    testing = [i * n for i in range(0, it_total + 1, 2000)]
    every = 10000 if kind == "face" else 5000
    ckpts = [i * n for i in range(0, it_total + 1, every)] + [it_total * n]
    total = it_total * n

    instag.prepare_output_and_logger(dataset)
    scenes = []
    for data_name in DATA_LIST:
        d = copy.deepcopy(dataset)
        d.source_path = os.path.join(dataset.source_path, data_name)
        d.model_path = os.path.join(dataset.model_path, data_name)
        os.makedirs(d.model_path, exist_ok=True)
        with open(os.path.join(d.model_path, "cfg_args"), "w") as f:
            f.write(str(Namespace(**vars(d))))
        instag.read_scene(d, ctl)
        scenes.append(d)
        if kind == "mouth":
            instag.torch_load(os.path.join(d.model_path, "chkpnt_face_latest.pth"))
    if kind == "mouth":
        instag.torch_load(os.path.join(dataset.model_path, "chkpnt_ema_face_latest.pth"))

    def postfix(it):
        if kind == "face":
            return "Loss=%.5f, Mouth=%.1f-%.1f" % (instag.loss_at(it / n, "face"), 2.0, 8.0)
        return "Loss=%.5f, AU25=%.1f-%.1f" % (instag.loss_at(it / n, "mouth"), 0.3, 1.2)

    def writer(it):
        def w():
            from fake_support import fakeinstag as fk
            meta = dict(kind="pretrain_" + kind, iteration=it,
                        audio_extractor=dataset.audio_extractor)
            fk.write_ckpt(os.path.join(dataset.model_path, "chkpnt_%s_latest.pth" % kind), **meta)
            fk.write_ckpt(os.path.join(dataset.model_path, "chkpnt_ema_%s_latest.pth" % kind), **meta)
            for d in scenes:
                fk.write_ckpt(os.path.join(d.model_path, "chkpnt_%s_%d.pth" % (kind, it)), **meta)
                fk.write_ckpt(os.path.join(d.model_path, "chkpnt_%s_latest.pth" % kind), **meta)
        return w

    events = {}
    for it in range(1, total + 1):
        if it in testing:
            add(events, it, evaluating(it, "test", "pre" + kind), evaluating(it, "train", "pre" + kind))
        if it in ckpts:
            add(events, it, say("\n[ITER {}] Saving Checkpoint".format(it)), writer(it))
    instag.train_loop(total, ctl, postfix, events, rate=18.0)
