# SPDX-License-Identifier: MIT
"""
    Fake InsTaG data_utils/deepspeech_features/extract_ds_features.py
    (instag-agent tests).  `--input X.wav|DIR [--output F] [--deepspeech PB]
    [--metainfo F]` writes X.npy (FAKENPY, shape (frames, 16, 29)).
"""

import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import argparse  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402
from fake_support import deps  # noqa: E402

deps.require("tensorflow", "tensorflow-gpu", "tensorflow")


def parse_args():
    parser = argparse.ArgumentParser(
        description="Extract DeepSpeech features from audio file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--input",
        type=str,
        required=True,
        help="path to input audio file or directory")
    parser.add_argument(
        "--output",
        type=str,
        help="path to output file with DeepSpeech features")
    parser.add_argument(
        "--deepspeech",
        type=str,
        help="path to DeepSpeech 0.1.0 frozen model")
    parser.add_argument(
        "--metainfo",
        type=str,
        help="path to file with meta-information")
    return parser.parse_args()


def conv(in_audios, out_files, ctl):
    for i, (audio_file_path, out_file_path) in enumerate(zip(in_audios, out_files)):
        print(audio_file_path)
        print(out_file_path)
        try:
            m = fk.read_media(audio_file_path)
        except fk.MediaError:
            raise ValueError("File format b'FAKE' not understood. Only 'RIFF' and 'RIFX' supported.")
        if m.kind != "audio":
            raise ValueError("File format b'FAKE' not understood. Only 'RIFF' and 'RIFX' supported.")
        n = fk.audio_feature_frames(m.seconds, "deepspeech")
        ctl.progress((i + 0.5) / len(in_audios), lambda: (_ for _ in ()).throw(
            RuntimeError("tensorflow.python.framework.errors_impl.ResourceExhaustedError: OOM")))
        print((n, 16, 29))
        fk.write_npy(out_file_path, (n, 16, 29), extractor="deepspeech",
                     source=os.path.basename(audio_file_path), seconds="%.3f" % m.seconds)


def main():
    args = parse_args()
    ctl = fk.control("extract_ds_features")
    ctl.start(lambda: (_ for _ in ()).throw(ImportError(
        "libcudart.so.11.0: cannot open shared object file: No such file or directory")))
    in_audio = os.path.expanduser(args.input)
    if not os.path.exists(in_audio):
        raise Exception("Input file/directory doesn't exist: {}".format(in_audio))
    if os.path.isfile(in_audio):
        out = args.output or (os.path.splitext(in_audio)[0] + ".npy")
        conv([in_audio], [out], ctl)
    else:
        paths = sorted(os.path.join(in_audio, f) for f in os.listdir(in_audio)
                       if os.path.isfile(os.path.join(in_audio, f))
                       and os.path.splitext(f)[1].lower() == ".wav")
        conv(paths, [os.path.splitext(p)[0] + ".npy" for p in paths], ctl)


if __name__ == "__main__":
    main()
