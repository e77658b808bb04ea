# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): placeholder for the CUDA extension gridencoder.
# The fake pip records "./gridencoder" when environment.yml is installed.
from setuptools import setup

setup(name="gridencoder", version="0.0.0")
