# SPDX-License-Identifier: MIT
#
# Fake InsTaG pretrain_face.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG pretrain_face.py (adds --share_audio_net).  Subjects are
# hard-coded: macron shaheen may jaein obama1 under -s.
#

from fake_support.train_common import parse
from fake_support import pretrain

if __name__ == "__main__":
    args, dataset, opt, ctl = parse("pretrain_face", "pretrain_face")
    pretrain.run(args, dataset, opt, ctl, "face")
    print("\nTraining complete.")
