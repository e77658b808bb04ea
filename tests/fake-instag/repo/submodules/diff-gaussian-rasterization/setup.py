# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): placeholder for the CUDA extension diff-gaussian-rasterization.
# The fake pip records "./submodules/diff-gaussian-rasterization" when environment.yml is installed.
from setuptools import setup

setup(name="diff-gaussian-rasterization", version="0.0.0")
