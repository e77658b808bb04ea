# SPDX-License-Identifier: MIT
# Fake InsTaG scripts/prepare_sapiens.sh (instag-agent tests).  The real one
# git-clones two Hugging Face repositories (Git LFS); this one creates the
# clone directories and checkpoint files locally, no network.  A second run
# fails the clones ("already exists") and, like the real one, still exits 0.
FAKE_CTL_ARGS="$*"; . "$(dirname "$0")/../fake_support/control.sh"
fake_control prepare_sapiens "fatal: unable to access 'https://huggingface.co/facebook/sapiens-depth-0.3b-torchscript/': Could not resolve host: huggingface.co"
fake_clone() { # `git clone URL`
	local dir=${1##*/}
	if [ -e "$dir" ]; then
		echo "fatal: destination path '$dir' already exists and is not an empty directory." >&2
		return 128
	fi
	echo "Cloning into '$dir'..." >&2
	mkdir "$dir" && printf 'FAKE git clone of %s\n' "$1" >"$dir/README.md"
}
fake_lfs_pull() { # `git lfs pull` inside a clone
	case $PWD in
	*/sapiens-depth-0.3b-torchscript)
		echo 'FAKEWEIGHTS sapiens_0.3b depth torchscript' >sapiens_0.3b_render_people_epoch_100_torchscript.pt2 ;;
	*/sapiens-normal-0.3b-torchscript)
		echo 'FAKEWEIGHTS sapiens_0.3b normal torchscript' >sapiens_0.3b_normal_render_people_epoch_66_torchscript.pt2 ;;
	esac
}
mkdir data_utils/sapiens/checkpoint
cd data_utils/sapiens/checkpoint
export GIT_LFS_SKIP_SMUDGE=1

echo "[STATUS] Downloading sapiens-depth-0.3b-torchscript..."
fake_clone https://huggingface.co/facebook/sapiens-depth-0.3b-torchscript
# git clone https://hf-mirror.com/facebook/sapiens-depth-0.3b-torchscript

cd sapiens-depth-0.3b-torchscript
fake_lfs_pull
fake_step 50 "batch response: Post \"https://huggingface.co/facebook/sapiens-depth-0.3b-torchscript.git/info/lfs/objects/batch\": EOF"

cd ../


echo "[STATUS] Downloading sapiens-normal-0.3b-torchscript..."
fake_clone https://huggingface.co/facebook/sapiens-normal-0.3b-torchscript
# git clone https://hf-mirror.com/facebook/sapiens-normal-0.3b-torchscript

cd sapiens-normal-0.3b-torchscript
fake_lfs_pull
