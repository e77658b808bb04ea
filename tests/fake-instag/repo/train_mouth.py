# SPDX-License-Identifier: MIT
#
# Fake InsTaG train_mouth.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG train_mouth.py; needs O/chkpnt_face_latest.pth.
#

import os

from fake_support import instag
from fake_support.train_common import parse, evaluating, say, ckpt_writer, ply_writer, add


def training(args, dataset, opt, ctl):
    total = opt.iterations
    testing_iterations = [i for i in range(0, total + 1, 10000)]
    saving_iterations = [i for i in range(0, total + 1, 10000)] + [total]
    au_lb0, au_ub0 = 0.3, 1.2

    instag.prepare_output_and_logger(dataset)
    train, test = instag.read_scene(dataset, ctl)
    instag.torch_load(args.pretrain_path)
    instag.torch_load(os.path.join(dataset.model_path, "chkpnt_face_latest.pth"))
    if args.start_checkpoint:
        instag.torch_load(args.start_checkpoint)

    def postfix(it):
        au_ub = au_ub0
        au_lb = au_ub - (1.0 / total) * it * (au_ub0 - au_lb0)
        return "Loss=%.5f, AU25=%.1f-%.1f" % (instag.loss_at(it, "mouth"), au_lb, au_ub)

    events = {}
    for it in range(1, total + 1):
        if it in saving_iterations:
            add(events, it,
                say("\n[ITER {}] Saving Gaussians".format(it)),
                ply_writer(dataset, str(it) + "_mouth", dataset.init_num))
        if it in testing_iterations:
            if not test:
                def boom():
                    raise ZeroDivisionError("integer division or modulo by zero")
                add(events, it, boom)
            add(events, it, evaluating(it, "test", "mouth"), evaluating(it, "train", "mouth"))
        if it in saving_iterations:
            add(events, it,
                say("\n[ITER {}] Saving Checkpoint".format(it)),
                ckpt_writer(dataset, "mouth", it, [
                    dataset.model_path + "/chkpnt_mouth_" + str(it) + ".pth",
                    dataset.model_path + "/chkpnt_mouth_latest" + ".pth"]))
    instag.train_loop(total, ctl, postfix, events, rate=30.0)


if __name__ == "__main__":
    args, dataset, opt, ctl = parse("face_mouth", "train_mouth")
    training(args, dataset, opt, ctl)
    print("\nTraining complete.")
