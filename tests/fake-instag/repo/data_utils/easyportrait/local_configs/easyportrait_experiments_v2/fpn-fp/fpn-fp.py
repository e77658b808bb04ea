# SPDX-License-Identifier: MIT
# Fake InsTaG (instag-agent tests): placeholder for EasyPortrait's FPN config.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c', depth=50),
             decode_head=dict(type='FPNHead', num_classes=9))
