# SPDX-License-Identifier: MIT
#
# Fake InsTaG train_fuse_con.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG train_fuse_con.py; needs O/chkpnt_{face,mouth}_latest.pth.
#

import copy
import os

from fake_support import instag
from fake_support.train_common import parse, say, ckpt_writer, ply_writer, add


def training(args, dataset, opt, ctl):
    total = opt.iterations
    saving_iterations = args.save_iterations
    checkpoint_iterations = [total]

    instag.prepare_output_and_logger(dataset)
    dataset.type = "mouth"
    train, test = instag.read_scene(dataset, ctl)
    instag.torch_load(os.path.join(dataset.model_path, "chkpnt_face_latest.pth"))
    instag.torch_load(os.path.join(dataset.model_path, "chkpnt_mouth_latest.pth"))
    if args.start_checkpoint:
        instag.torch_load(args.start_checkpoint)

    def postfix(it):
        return "Loss=%.5f" % instag.loss_at(it, "fuse")

    events = {}
    for it in range(1, total + 1):
        if it in saving_iterations:
            add(events, it,
                say("\n[ITER {}] Saving Gaussians".format(it)),
                ply_writer(dataset, str(it), dataset.init_num))
        if it in checkpoint_iterations:
            add(events, it,
                say("\n[ITER {}] Saving Checkpoint".format(it)),
                ckpt_writer(dataset, "fuse", it, [
                    dataset.model_path + "/chkpnt_fuse_" + str(it) + ".pth",
                    dataset.model_path + "/chkpnt_fuse_latest" + ".pth"]))
    instag.train_loop(total, ctl, postfix, events, rate=12.0)


if __name__ == "__main__":
    args, dataset, opt, ctl = parse("fuse", "train_fuse_con")
    training(args, copy.copy(dataset), opt, ctl)
    print("\nTraining complete.")
