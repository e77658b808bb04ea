# SPDX-License-Identifier: MIT
"""The parts of InsTaG's training/rendering runtime the fake scripts share:
the data-set loader's file checks (scene/dataset_readers.py, scene/__init__.py),
output folder + cfg_args + tensorboard file, and the training loop's
progress bar and save/report events.  Not part of InsTaG.
"""

import glob
import json
import os
import socket
import time
from argparse import Namespace

from fake_support import fakeinstag as fk

POSTFIX = {"deepspeech": "", "esperanto": "_eo", "hubert": "_hu"}


def cuda_oom():
    raise RuntimeError(
        "CUDA out of memory. Tried to allocate 256.00 MiB (GPU 0; 23.65 GiB total "
        "capacity; 21.93 GiB already allocated; 120.56 MiB free; 22.40 GiB reserved "
        "in total by PyTorch) If reserved memory is >> allocated memory try setting "
        "max_split_size_mb to avoid fragmentation.  See documentation for Memory "
        "Management and PYTORCH_CUDA_ALLOC_CONF")


def cuda_unavailable():
    raise RuntimeError("No CUDA GPUs are available")


def np_load_shape(path):
    """np.load(path).shape, failing the way numpy does."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    return fk.read_npy_shape(path)


def torch_load(path):
    """torch.load(path): only checks the file is there."""
    if path is None:
        raise AttributeError(
            "'NoneType' object has no attribute 'seek'. You can only torch.load from "
            "a file that is seekable. Please pre-load the data into a buffer like "
            "io.BytesIO and try to load from it instead.")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        raise EOFError("Ran out of input")
    return head


def pil_open(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    size = fk.read_img_size(path)
    if size is None:
        raise OSError("cannot identify image file %r" % path)
    return size


def read_au_csv(path):
    """Columns and row count of OpenFace's CSV (pd.read_csv)."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        rows = sum(1 for ln in f if ln.strip())
    header = [h if i == 0 else h for i, h in enumerate(header)]
    for key in (" AU45_r", " AU25_r", " AU01_r", " AU04_r", " AU05_r", " AU06_r", " AU07_r"):
        if key not in header:
            raise KeyError(key)
    return rows


def audio_rows_from_wav(path):
    """Frames AudDataset(path) gives for the AVE encoder."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    try:
        m = fk.read_media(path)
    except fk.MediaError:
        raise RuntimeError("Error opening %r: Format not recognised." % path)
    return fk.audio_feature_frames(m.seconds, "ave")


def read_cameras(path, transformsfile, audio_file, audio_extractor, N_views, ctl):
    """scene/dataset_readers.py readCamerasFromTransforms: returns frame infos."""
    N_views = N_views if "train" in transformsfile and audio_file == "" else -1

    with open(os.path.join(path, transformsfile)) as json_file:
        contents = json.load(json_file)
    focal_len = contents["focal_len"]
    frames = contents["frames"][:N_views]

    if audio_extractor == "ave":
        torch_load("./data_utils/audio_visual_encoder.pth")
        if audio_file == "":
            cache = os.path.join(path, "aud_ave.npy")
            if os.path.exists(cache):
                shape = fk.read_npy_shape(cache)
                print(shape)
                n_aud = shape[0]
            else:
                n_aud = audio_rows_from_wav(os.path.join(path, "aud.wav"))
                for _ in fk.iterate(range((n_aud + 127) // 128), ctl, rate=8.0, work=False):
                    pass
                fk.write_npy(cache, (n_aud, 512, 1), extractor="ave", source="aud.wav")
        else:
            n_aud = audio_rows_from_wav(audio_file)
            for _ in fk.iterate(range((n_aud + 127) // 128), ctl, rate=8.0, work=False):
                pass
    elif audio_file == "":
        n_aud = np_load_shape(os.path.join(path, "aud{}.npy".format(POSTFIX[audio_extractor])))[0]
    else:
        n_aud = np_load_shape(audio_file)[0]

    if audio_file != "":
        loop_time = n_aud // len(frames) + 1
        frames = frames * loop_time

    au_rows = read_au_csv(os.path.join(path, "au.csv"))

    for idx, frame in enumerate(fk.iterate(frames, ctl, total_known=False, rate=900.0, work=False)):
        p = os.path.join(path, "ori_imgs", str(frame["img_id"]) + ".lms")
        if not os.path.exists(p):
            raise FileNotFoundError("%s not found." % p)

    cams = []
    for idx, frame in enumerate(fk.iterate(frames, ctl, total_known=False, rate=60.0, work=False)):
        img_id = frame["img_id"]
        w, h = pil_open(os.path.join(path, "gt_imgs", str(img_id) + ".jpg"))
        pil_open(os.path.join(path, "torso_imgs", str(img_id) + ".png"))
        pil_open(os.path.join(path, "bc.jpg"))
        np_load_shape(os.path.join(path, "teeth_mask", str(img_id) + ".npy"))
        pil_open(os.path.join(path, "parsing", str(img_id) + ".png"))
        if audio_file == "":
            if img_id > n_aud:
                print("[warnining] audio feature is too short")
                break
        else:
            if idx >= n_aud:
                break
        if img_id >= au_rows or img_id < -au_rows:
            raise IndexError("index %d is out of bounds for axis 0 with size %d" % (img_id, au_rows))
        if "train" in transformsfile and N_views > 0:
            for kind in ("normal", "depth"):
                cands = glob.glob(os.path.join(path, "sapiens/%s/sapiens_*" % kind))
                cands.sort(reverse=True)
                if not cands:
                    raise IndexError("list index out of range")
                np_load_shape(os.path.join(cands[0], str(img_id) + ".npy"))
        cams.append({"img_id": img_id, "width": w, "height": h, "focal": focal_len,
                     "matrix": frame.get("transform_matrix")})
    return cams


def read_scene(dataset, ctl):
    """readNerfSyntheticInfo + Scene.__init__ (file side)."""
    path = dataset.source_path
    if not os.path.exists(os.path.join(path, "transforms_train.json")):
        raise AssertionError("Could not recognize scene type!")
    print("Found transforms_train.json file, assuming Blender data set!")
    have_train = False
    if not dataset.eval:
        print("Reading Training Transforms")
        train = read_cameras(path, "transforms_train.json", dataset.audio,
                             dataset.audio_extractor, dataset.N_views, ctl)
        have_train = True
    print("Reading Test Transforms")
    test = read_cameras(path, "transforms_val.json", dataset.audio,
                        dataset.audio_extractor, dataset.N_views, ctl)
    if dataset.all_for_train:
        if not have_train:
            raise UnboundLocalError("local variable 'train_cam_infos' referenced before assignment")
        train = train + test
    if dataset.eval:
        train = test
    if not train:
        raise ValueError("need at least one array to concatenate")
    num_pts = dataset.init_num
    print(f"Generating random point cloud ({num_pts})...")
    ply = os.path.join(path, "points3d.ply")
    write_ply(ply, num_pts)

    with open(ply, "rb") as src, open(os.path.join(dataset.model_path, "input.ply"), "wb") as dst:
        dst.write(src.read())
    cams = []
    for i, c in enumerate(test + ([] if dataset.eval else train)):
        cams.append({"id": i, "img_name": str(c["img_id"]), "width": c["width"],
                     "height": c["height"], "position": [0.0, 0.0, 0.0],
                     "rotation": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                     "fy": c["focal"], "fx": c["focal"]})
    with open(os.path.join(dataset.model_path, "cameras.json"), "w") as f:
        json.dump(cams, f)
    print("Loading Training Cameras")
    print("Loading Test Cameras")
    return train, test


def write_ply(path, n, **meta):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("ply\nformat binary_little_endian 1.0\nelement vertex %d\n" % n)
        for k in sorted(meta):
            f.write("comment %s=%s\n" % (k, meta[k]))
        f.write("property float x\nproperty float y\nproperty float z\nend_header\n")


def prepare_output_and_logger(args, tb=True):
    if not args.model_path:
        unique_str = os.getenv("OAR_JOB_ID") or __import__("uuid").uuid4().hex
        args.model_path = os.path.join("./output/", unique_str[0:10])
    print("Output folder: {}".format(args.model_path))
    os.makedirs(args.model_path, exist_ok=True)
    with open(os.path.join(args.model_path, "cfg_args"), "w") as cfg_log_f:
        cfg_log_f.write(str(Namespace(**vars(args))))
    if tb:
        name = "events.out.tfevents.%d.%s" % (int(time.time()), socket.gethostname())
        with open(os.path.join(args.model_path, name), "wb") as f:
            f.write(b"\x18\x00\x00\x00\x00\x00\x00\x00fake tensorboard events\n")


def loss_at(it, kind):
    base = {"face": 0.035, "mouth": 0.02, "fuse": 0.015}.get(kind, 0.03)
    return base + 0.25 * (2.718281828 ** (-it / 1500.0)) + fk.det_float(kind, it, hi=0.002)


def train_loop(total, ctl, postfix, events, rate):
    """Iterations 1..total: bar updates (stride a multiple of 10, <= 100
    redraws) and events {iteration: [callables]} in InsTaG's order."""
    bar = fk.Bar(total=total, desc="Training progress", rate=rate)
    step = fk.stride_for(total, 100, 10)
    points = set(range(step, total + 1, step)) | {total} | set(k for k in events if 1 <= k <= total)
    frac = ctl.fail_fraction()
    if frac is not None:
        points.add(max(1, int(total * frac)))
    for it in sorted(points):
        if it % 10 == 0 or it == total:
            bar.update_to(it - it % 10 if it % 10 else it, postfix(it))
        ctl.progress(it / float(total) if total else 1.0, cuda_oom)
        if it == total:
            bar.close()
        for action in events.get(it, []):
            action()
    if total <= 0:
        bar.close()
