# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/hubert.py (instag-agent tests).  `--wav X.wav` writes
# X_hu.npy (shape (frames, 2, 1024)).  Like the real one it "loads the model"
# (prints two lines) before parsing its arguments.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import deps  # noqa: E402

deps.require("transformers", "transformers")
print("Loading the Wav2Vec2 Processor...")
print("Loading the HuBERT Model...")

from argparse import ArgumentParser  # noqa: E402

parser = ArgumentParser()
parser.add_argument('--wav', type=str, help='')
args = parser.parse_args()
ctl = fk.control("hubert")
ctl.start(lambda: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))

wav_name = args.wav
if wav_name is None:
    raise TypeError("expected str, bytes or os.PathLike object, not NoneType")
if not os.path.exists(wav_name):
    raise FileNotFoundError(2, "No such file or directory", wav_name)
try:
    m = fk.read_media(wav_name)
except fk.MediaError:
    raise RuntimeError("Error opening %r: Format not recognised." % wav_name)
n = fk.audio_feature_frames(m.seconds, "hubert")
for i in range(4):
    ctl.progress((i + 1) / 4.0, lambda: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))
fk.write_npy(wav_name.replace('.wav', '_hu.npy'), (n, 2, 1024), extractor="hubert",
             source=os.path.basename(wav_name), seconds="%.3f" % m.seconds)
print((n, 2, 1024))
