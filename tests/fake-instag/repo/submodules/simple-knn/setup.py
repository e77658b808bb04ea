# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): placeholder for the CUDA extension simple-knn.
# The fake pip records "./submodules/simple-knn" when environment.yml is installed.
from setuptools import setup

setup(name="simple-knn", version="0.0.0")
