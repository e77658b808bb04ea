# SPDX-License-Identifier: MIT
# Fake InsTaG scripts/train_xx_few.sh (instag-agent tests): the real command sequence.
FAKE_CTL_ARGS="$*"; . "$(dirname "$0")/../fake_support/control.sh"
fake_control train_xx_few "train_xx_few.sh: failed"
dataset=$1
workspace=$2
gpu_id=$3
audio_extractor='ave' # deepspeech, esperanto, hubert

pretrain_project_path="output/pretrain_ave/"

pretrain_face_path=${pretrain_project_path}/chkpnt_ema_face_latest.pth
pretrain_mouth_path=${pretrain_project_path}/chkpnt_ema_mouth_latest.pth

n_views=250

export CUDA_VISIBLE_DEVICES=$gpu_id

python train_face.py --type face -s $dataset -m $workspace --init_num 2000 --densify_grad_threshold 0.0005 --audio_extractor $audio_extractor --pretrain_path $pretrain_face_path --iterations 10000 --sh_degree 1 --N_views $n_views
python train_mouth.py --type mouth -s $dataset -m $workspace --audio_extractor $audio_extractor --pretrain_path $pretrain_mouth_path --init_num 5000 --iterations 10000 --sh_degree 1 --N_views $n_views
python train_fuse_con.py -s $dataset -m $workspace --opacity_lr 0.001 --audio_extractor $audio_extractor --iterations 2000 --sh_degree 1 --N_views $n_views

python synthesize_fuse.py -s $dataset -m $workspace --eval --audio_extractor $audio_extractor --dilate
python metrics.py $workspace/test/ours_None/renders/out.mp4 $workspace/test/ours_None/gt/out.mp4
