# SPDX-License-Identifier: MIT
# Fake InsTaG data_utils/sapiens/run.sh (instag-agent tests): same two calls.
FAKE_CTL_ARGS="$*"; . "$(dirname "$0")/../../fake_support/control.sh"
fake_control run "run.sh: sapiens failed"
bash data_utils/sapiens/lite/scripts/depth.sh $1 
bash data_utils/sapiens/lite/scripts/normal.sh $1
