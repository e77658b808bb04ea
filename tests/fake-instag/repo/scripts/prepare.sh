# SPDX-License-Identifier: MIT
# Fake InsTaG scripts/prepare.sh (instag-agent tests).  The real one wgets
# these files; this one makes placeholder files at the same paths and never
# touches the network.
FAKE_CTL_ARGS="$*"; . "$(dirname "$0")/../fake_support/control.sh"
fake_control prepare "prepare.sh: wget: unable to resolve host address 'github.com'"
fake_wget() { # URL -O FILE, like `wget URL -O FILE` (stderr log, placeholder body)
	printf -- '--%s--  %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$1" >&2
	printf 'HTTP request sent, awaiting response... 200 OK\n' >&2
	printf "Saving to: '%s'\n\n" "$3" >&2
	if printf 'FAKEWEIGHTS file=%s url=%s\n' "${3##*/}" "$1" >"$3"; then
		printf "'%s' saved\n\n" "$3" >&2
	else
		return 1
	fi
}

fake_wget https://github.com/YudongGuo/AD-NeRF/blob/master/data_util/face_parsing/79999_iter.pth?raw=true -O data_utils/face_parsing/79999_iter.pth

mkdir data_utils/face_tracking/3DMM

fake_wget https://github.com/YudongGuo/AD-NeRF/blob/master/data_util/face_tracking/3DMM/exp_info.npy?raw=true -O data_utils/face_tracking/3DMM/exp_info.npy
fake_wget https://github.com/YudongGuo/AD-NeRF/blob/master/data_util/face_tracking/3DMM/keys_info.npy?raw=true -O data_utils/face_tracking/3DMM/keys_info.npy
fake_step 50 "prepare.sh: wget: connection timed out"
fake_wget https://github.com/YudongGuo/AD-NeRF/blob/master/data_util/face_tracking/3DMM/sub_mesh.obj?raw=true -O data_utils/face_tracking/3DMM/sub_mesh.obj
fake_wget https://github.com/YudongGuo/AD-NeRF/blob/master/data_util/face_tracking/3DMM/topology_info.npy?raw=true -O data_utils/face_tracking/3DMM/topology_info.npy

fake_wget https://github.com/ZiqiaoPeng/SyncTalk/blob/main/nerf_triplane/checkpoints/audio_visual_encoder.pth?raw=true -O data_utils/audio_visual_encoder.pth
fake_step 100 "prepare.sh: wget: connection timed out"
