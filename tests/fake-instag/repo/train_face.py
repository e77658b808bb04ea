# SPDX-License-Identifier: MIT
#
# Fake InsTaG train_face.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG train_face.py; checks the inputs the real one reads,
# prints what it prints and writes the files it writes (as placeholders).
#

from fake_support import fakeinstag as fk
from fake_support import instag
from fake_support.train_common import parse, evaluating, say, ckpt_writer, ply_writer, add


def training(args, dataset, opt, ctl):
    total = opt.iterations
    testing_iterations = [1] + [i for i in range(0, total + 1, 10000)]
    saving_iterations = [i for i in range(0, total + 1, 10000)] + [total]
    mouth_lb0, mouth_ub0 = 2.0, 12.0

    instag.prepare_output_and_logger(dataset)
    train, test = instag.read_scene(dataset, ctl)
    instag.torch_load(args.pretrain_path)
    if args.start_checkpoint:
        instag.torch_load(args.start_checkpoint)

    def postfix(it):
        lb = mouth_lb0 + (mouth_ub0 - mouth_lb0) * 0.2
        window = (mouth_ub0 - lb) * 0.5
        m_lb = lb + (1.0 / max(total, 1)) * it * (mouth_ub0 - lb)
        m_ub = m_lb + window
        m_lb = m_lb - window
        return "Loss=%.5f, Mouth=%.1f-%.1f" % (instag.loss_at(it, "face"), m_lb, m_ub)

    events = {}
    for it in sorted(set(range(1, total + 1)) & set(testing_iterations)):
        if not test:
            def boom():
                raise ZeroDivisionError("integer division or modulo by zero")
            add(events, it, boom)
        add(events, it, evaluating(it, "test", "face"), evaluating(it, "train", "face"))
    for it in sorted(set(range(1, total + 1)) & set(saving_iterations)):
        add(events, it,
            say("\n[ITER {}] Saving Gaussians".format(it)),
            ply_writer(dataset, str(it) + "_face", dataset.init_num),
            say("\n[ITER {}] Saving Checkpoint".format(it)),
            ckpt_writer(dataset, "face", it, [
                dataset.model_path + "/chkpnt_face_" + str(it) + ".pth",
                dataset.model_path + "/chkpnt_face_latest" + ".pth"]))
    instag.train_loop(total, ctl, postfix, events, rate=25.0)


if __name__ == "__main__":
    args, dataset, opt, ctl = parse("face_mouth", "train_face")
    training(args, dataset, opt, ctl)
    print("\nTraining complete.")
