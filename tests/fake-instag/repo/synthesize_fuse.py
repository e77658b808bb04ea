# SPDX-License-Identifier: MIT
#
# Fake InsTaG synthesize_fuse.py (instag-agent tests).  Same command line as
# Fictionarry/InsTaG synthesize_fuse.py.  Reads O/cfg_args (every CLI value,
# defaults included, overrides it), needs O/chkpnt_fuse_latest.pth, writes
# O/{test|train}/ours_None/renders/out.mp4 (+ out_face.mp4, out_mouth.mp4 and
# gt/out.mp4 unless --fast): 25 fps, no audio track.  out.mp4 is a FAKEMEDIA
# video whose metadata lines name the subject, audio, extractor and frames.
#

import copy
import os
from argparse import ArgumentParser

from arguments import ModelParams, PipelineParams, get_combined_args
from utils.general_utils import safe_state
from fake_support import fakeinstag as fk
from fake_support import instag


def render_set(model_path, name, iteration, views, dataset, fast, dilate, personalized, ctl, ckpt):
    render_path = os.path.join(model_path, name, "ours_{}".format(iteration), "renders")
    gts_path = os.path.join(model_path, name, "ours_{}".format(iteration), "gt")
    os.makedirs(render_path, exist_ok=True)
    os.makedirs(gts_path, exist_ok=True)

    for _ in fk.iterate(views, ctl, desc="Rendering progress", rate=28.0, on_fail=instag.cuda_oom):
        pass

    n = len(views)
    w = views[0]["width"] if views else 512
    h = views[0]["height"] if views else 512
    audio = dataset.audio
    meta = [
        "kind=render",
        "subject=%s" % os.path.basename(os.path.normpath(dataset.source_path)),
        "source_path=%s" % dataset.source_path,
        "model_path=%s" % model_path,
        "set=%s" % name,
        "audio=%s" % (audio if audio else "(training audio)"),
        "audio_sha256=%s" % (fk.sha256_file(audio) if audio else "-"),
        "audio_extractor=%s" % dataset.audio_extractor,
        "frames=%d" % n,
        "first_img_id=%s" % (views[0]["img_id"] if views else "-"),
        "dilate=%d personalized=%d" % (1 if dilate else 0, 1 if personalized else 0),
        "checkpoint_sha256=%s" % ckpt,
    ]
    secs = n / 25.0
    fk.write_video(os.path.join(render_path, "out.mp4"), 25, w, h, secs, False, meta)
    if not fast:
        fk.write_video(os.path.join(gts_path, "out.mp4"), 25, w, h, secs, False,
                       [m.replace("kind=render", "kind=gt") for m in meta])
        fk.write_video(os.path.join(render_path, "out_face.mp4"), 25, w, h, secs, False,
                       [m.replace("kind=render", "kind=render_face") for m in meta])
        fk.write_video(os.path.join(render_path, "out_mouth.mp4"), 25, w, h, secs, False,
                       [m.replace("kind=render", "kind=render_mouth") for m in meta])


def render_sets(dataset, iteration, use_train, fast, dilate, personalized, ctl):
    dataset.type = "mouth"
    train, test = instag.read_scene(dataset, ctl)
    ckpt_path = os.path.join(dataset.model_path, "chkpnt_fuse_latest.pth")
    instag.torch_load(ckpt_path)
    ckpt = fk.sha256_file(ckpt_path)
    render_set(dataset.model_path, "test" if not use_train else "train", None,
               test if not use_train else train, dataset, fast, dilate, personalized, ctl, ckpt)


if __name__ == "__main__":
    parser = ArgumentParser(description="Testing script parameters")
    model = ModelParams(parser)
    pipeline = PipelineParams(parser)
    parser.add_argument("--iteration", default=-1, type=int)
    parser.add_argument("--use_train", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--dilate", action="store_true")
    parser.add_argument("--personalized", action="store_true")
    args = get_combined_args(parser)
    ctl = fk.control("synthesize_fuse")
    print("Rendering " + args.model_path)

    safe_state(args.quiet)
    ctl.start(instag.cuda_unavailable)

    render_sets(copy.copy(model.extract(args)), args.iteration, args.use_train, args.fast,
                args.dilate, args.personalized, ctl)
