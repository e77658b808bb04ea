# SPDX-License-Identifier: MIT
#
# Fake InsTaG pretrain_mouth.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG pretrain_mouth.py.  Needs pretrain_face.py's checkpoints.
#

from fake_support.train_common import parse
from fake_support import pretrain

if __name__ == "__main__":
    args, dataset, opt, ctl = parse("pretrain_mouth", "pretrain_mouth")
    pretrain.run(args, dataset, opt, ctl, "mouth")
    print("\nTraining complete.")
