# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/wav2vec.py (instag-agent tests).  Same command line:
# `--wav X.wav [--play] [--model M] [--save_feats] [--fps 50] [-l 10] [-m 50] [-r 10]`.
# With --save_feats writes X_eo.npy (esperanto model, the default) or X.npy.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import deps  # noqa: E402

if __name__ == '__main__':
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument('--wav', type=str, default='')
    parser.add_argument('--play', action='store_true', help="play out the audio")
    parser.add_argument('--model', type=str, default='cpierse/wav2vec2-large-xlsr-53-esperanto')
    parser.add_argument('--save_feats', action='store_true')
    parser.add_argument('--fps', type=int, default=50)
    parser.add_argument('-l', type=int, default=10)
    parser.add_argument('-m', type=int, default=50)
    parser.add_argument('-r', type=int, default=10)
    opt = parser.parse_args()
    ctl = fk.control("wav2vec")

    if 'deepspeech' in opt.model:
        raise ValueError("DeepSpeech features should not use this code to extract...")
    deps.require("transformers", "transformers")
    ctl.start(lambda: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))

    if opt.wav == '' or opt.play:
        raise OSError("[Errno -9996] Invalid output device (no default output device)")
    if not os.path.exists(opt.wav):
        raise RuntimeError("Error opening %r: System error." % opt.wav)
    try:
        m = fk.read_media(opt.wav)
    except fk.MediaError:
        raise RuntimeError("Error opening %r: Format not recognised." % opt.wav)
    if m.channels and m.channels > 1:
        print(f'[WARN] audio has {m.channels} channels, only use the first.')
    if m.rate != 16000:
        print(f'[WARN] audio sample rate is {m.rate}, resampling into 16000.')
    samples = int(round(m.seconds * 16000))
    print(f'[INFO] loaded audio stream {opt.wav}: ({samples},)')
    print(f'[INFO] loading ASR model {opt.model}...')
    steps = max(1, samples // (320 * opt.m))
    for i in range(steps):
        ctl.progress((i + 1) / float(steps), lambda: (_ for _ in ()).throw(
            RuntimeError("CUDA error: out of memory")))
    print('[START]\n' + ' ' + 'fake transcript' + '\n[END]')
    if opt.save_feats:
        print(f'[INFO] save all feats for training purpose... ')
        dim = 44 if 'esperanto' in opt.model else 32
        if 'esperanto' in opt.model:
            output_path = opt.wav.replace('.wav', '_eo.npy')
        else:
            output_path = opt.wav.replace('.wav', '.npy')
        n = fk.audio_feature_frames(m.seconds, "esperanto")
        fk.write_npy(output_path, (n, 16, dim), extractor="esperanto",
                     source=os.path.basename(opt.wav), seconds="%.3f" % m.seconds)
        print(f"[INFO] saved logits to {output_path}")
