# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/process.py (instag-agent tests).  Same command line
# as Fictionarry/InsTaG data_utils/process.py: `path [--task N] [--asr NAME]`.
# Like the real one it runs ffmpeg / python sub-steps with os.system and
# ignores their exit status; later steps then fail on the missing files.
import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import glob  # noqa: E402
import json  # noqa: E402
import argparse  # noqa: E402

from fake_support import fakeinstag as fk  # noqa: E402


def imread_size(path):
    """cv2.imread(path).shape[:2] -> (h, w); None.shape -> AttributeError."""
    s = fk.read_img_size(path)
    if s is None:
        raise AttributeError("'NoneType' object has no attribute 'shape'")
    return s[1], s[0]


def seg_check(path):
    if fk.read_img_size(path) is None:
        raise TypeError("'NoneType' object is not subscriptable")


def extract_audio(path, out_path, sample_rate=16000):
    print(f'[INFO] ===== extract audio from {path} to {out_path} =====')
    cmd = f'ffmpeg -i {path} -f wav -ar {sample_rate} {out_path}'
    os.system(cmd)
    print(f'[INFO] ===== extracted audio =====')


def extract_audio_features(path, mode='wav2vec'):
    print(f'[INFO] ===== extract audio labels for {path} =====')
    if mode == 'wav2vec':
        cmd = f'python nerf/asr.py --wav {path} --save_feats'
    else:  # deepspeech
        cmd = f'python data_utils/deepspeech_features/extract_ds_features.py --input {path}'
    os.system(cmd)
    print(f'[INFO] ===== extracted audio labels =====')


def extract_images(path, out_path, fps=25):
    print(f'[INFO] ===== extract images from {path} to {out_path} =====')
    cmd = f'ffmpeg -i {path} -vf fps={fps} -qmin 1 -q:v 1 -start_number 0 {os.path.join(out_path, "%d.jpg")}'
    os.system(cmd)
    print(f'[INFO] ===== extracted images =====')


def extract_semantics(ori_imgs_dir, parsing_dir):
    print(f'[INFO] ===== extract semantics from {ori_imgs_dir} to {parsing_dir} =====')
    cmd = f'python data_utils/face_parsing/test.py --respath={parsing_dir} --imgpath={ori_imgs_dir}'
    os.system(cmd)
    print(f'[INFO] ===== extracted semantics =====')


def extract_landmarks(ori_imgs_dir):
    print(f'[INFO] ===== extract face landmarks from {ori_imgs_dir} =====')
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    for image_path in fk.iterate(image_paths, CTL, rate=14.0):
        h, w = imread_size(image_path)
        n = int(os.path.basename(image_path)[:-4]) if os.path.basename(image_path)[:-4].isdigit() else 0
        lines = []
        for k in range(68):
            x = w * (0.3 + 0.4 * (k % 17) / 16.0) + fk.det_float(n, k, "x", hi=2.0)
            y = h * (0.35 + 0.4 * (k // 17) / 4.0) + fk.det_float(n, k, "y", hi=2.0)
            lines.append("%f %f\n" % (x, y))
        fk.write_text(image_path.replace('jpg', 'lms'), "".join(lines))
    print(f'[INFO] ===== extracted face landmarks =====')


def extract_background(base_dir, ori_imgs_dir):
    print(f'[INFO] ===== extract background image from {ori_imgs_dir} =====')
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    image_paths = image_paths[::20]
    h, w = imread_size(image_paths[0])
    for image_path in fk.iterate(image_paths, CTL, rate=3.0):
        seg_check(image_path.replace('ori_imgs', 'parsing').replace('.jpg', '.png'))
    fk.write_img(os.path.join(base_dir, 'bc.jpg'), "jpg", w, h, kind="background")
    print(f'[INFO] ===== extracted background image =====')


def extract_torso_and_gt(base_dir, ori_imgs_dir):
    print(f'[INFO] ===== extract torso and gt images for {base_dir} =====')
    if fk.read_img_size(os.path.join(base_dir, 'bc.jpg')) is None:
        bg = None
    else:
        bg = True
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    for image_path in fk.iterate(image_paths, CTL, rate=25.0):
        h, w = imread_size(image_path)
        seg_check(image_path.replace('ori_imgs', 'parsing').replace('.jpg', '.png'))
        if bg is None:
            raise TypeError("'NoneType' object is not subscriptable")
        fk.write_img(image_path.replace('ori_imgs', 'gt_imgs'), "jpg", w, h, kind="gt")
        fk.write_img(image_path.replace('ori_imgs', 'torso_imgs').replace('.jpg', '.png'),
                     "png", w, h, kind="torso", mode="RGBA")
    print(f'[INFO] ===== extracted torso and gt images =====')


def face_tracking(ori_imgs_dir):
    print(f'[INFO] ===== perform face tracking =====')
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    h, w = imread_size(image_paths[0])
    cmd = f'python data_utils/face_tracking/face_tracker.py --path={ori_imgs_dir} --img_h={h} --img_w={w} --frame_num={len(image_paths)}'
    os.system(cmd)
    print(f'[INFO] ===== finished face tracking =====')


def read_track_params(base_dir):
    """torch.load(track_params.pt) -> number of tracked frames and focal."""
    p = os.path.join(base_dir, 'track_params.pt')
    if not os.path.exists(p):
        raise FileNotFoundError(2, "No such file or directory", p)
    with open(p) as f:
        first = f.readline().split()
    kv = dict(t.split("=", 1) for t in first[2:] if "=" in t)
    return int(kv["frames"]), float(kv.get("focal", "1100.0"))


def write_transforms(base_dir, w, h, focal, valid_num, train_val_split):
    train_ids = range(0, train_val_split)
    val_ids = range(train_val_split, valid_num)
    for save_id, ids in (('train', train_ids), ('val', val_ids)):
        transform_dict = dict()
        transform_dict['focal_len'] = float(focal)
        transform_dict['cx'] = float(w / 2.0)
        transform_dict['cy'] = float(h / 2.0)
        transform_dict['frames'] = []
        for i in ids:
            a = fk.det_float(i % max(valid_num, 1), "yaw", lo=-0.05, hi=0.05)
            z = -fk.det_float(i % max(valid_num, 1), "z", lo=0.9, hi=1.0)
            frame_dict = dict()
            frame_dict['img_id'] = i
            frame_dict['aud_id'] = i
            frame_dict['transform_matrix'] = [
                [1.0, 0.0, a, 0.0], [0.0, 1.0, 0.0, 0.0], [-a, 0.0, 1.0, -z], [0.0, 0.0, 0.0, 1.0]]
            transform_dict['frames'].append(frame_dict)
        with open(os.path.join(base_dir, 'transforms_' + save_id + '.json'), 'w') as fp:
            json.dump(transform_dict, fp, indent=2, separators=(',', ': '))


def save_transforms(base_dir, ori_imgs_dir):
    print(f'[INFO] ===== save transforms =====')
    image_paths = glob.glob(os.path.join(ori_imgs_dir, '*.jpg'))
    h, w = imread_size(image_paths[0])
    valid_num, focal = read_track_params(base_dir)
    train_val_split = int(valid_num * 10 / 11)
    write_transforms(base_dir, w, h, focal, valid_num, train_val_split)
    print(f'[INFO] ===== finished saving transforms =====')


def main():
    global CTL
    parser = argparse.ArgumentParser()
    parser.add_argument('path', type=str, help="path to video file")
    parser.add_argument('--task', type=int, default=-1, help="-1 means all")
    parser.add_argument('--asr', type=str, default='deepspeech', help="wav2vec or deepspeech")
    opt = parser.parse_args()
    CTL = fk.control("process")

    def boom():
        raise RuntimeError("CUDA error: out of memory")
    CTL.start(boom)

    base_dir = os.path.dirname(opt.path)
    wav_path = os.path.join(base_dir, 'aud.wav')
    ori_imgs_dir = os.path.join(base_dir, 'ori_imgs')
    parsing_dir = os.path.join(base_dir, 'parsing')
    gt_imgs_dir = os.path.join(base_dir, 'gt_imgs')
    torso_imgs_dir = os.path.join(base_dir, 'torso_imgs')

    os.makedirs(ori_imgs_dir, exist_ok=True)
    os.makedirs(parsing_dir, exist_ok=True)
    os.makedirs(gt_imgs_dir, exist_ok=True)
    os.makedirs(torso_imgs_dir, exist_ok=True)

    steps = [
        (1, lambda: extract_audio(opt.path, wav_path)),
        (2, lambda: extract_audio_features(wav_path, mode=opt.asr)),
        (3, lambda: extract_images(opt.path, ori_imgs_dir)),
        (4, lambda: extract_semantics(ori_imgs_dir, parsing_dir)),
        (5, lambda: extract_background(base_dir, ori_imgs_dir)),
        (6, lambda: extract_torso_and_gt(base_dir, ori_imgs_dir)),
        (7, lambda: extract_landmarks(ori_imgs_dir)),
        (8, lambda: face_tracking(ori_imgs_dir)),
        (9, lambda: save_transforms(base_dir, ori_imgs_dir)),
    ]
    for task, fn in steps:
        if opt.task == -1 or opt.task == task:
            # no flush: like the real script, prints are block-buffered on a
            # pipe (run python -u / PYTHONUNBUFFERED=1 to keep the order)
            fn()
            CTL.progress(task / 9.0, boom)


CTL = None

if __name__ == '__main__':
    main()
