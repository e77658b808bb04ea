# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): safe_state() as in InsTaG's
# utils/general_utils.py -- every stdout write that ends a line gets
# " [dd/mm HH:MM:SS]" before its newline(s); --quiet silences stdout.

import sys
from datetime import datetime


def safe_state(silent):
    old_f = sys.stdout

    class F:
        def __init__(self, silent):
            self.silent = silent

        def write(self, x):
            if not self.silent:
                if x.endswith("\n"):
                    old_f.write(x.replace("\n", " [{}]\n".format(str(datetime.now().strftime("%d/%m %H:%M:%S")))))
                else:
                    old_f.write(x)

        def flush(self):
            old_f.flush()

    sys.stdout = F(silent)
