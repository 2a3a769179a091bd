"""MobileNetV4 Conv-S/M/L and Hybrid-M/L (Qin et al., ECCV 2024), registered as ``mobilenetv4_*``.

``specs`` holds the block tables, ``blocks`` the FusedIB / UIB / Mobile-MQA blocks, ``model`` the network.
The module hierarchy mirrors timm's ``MobileNetV3``-based MNv4, so timm checkpoints load through a few
renames. Train-time state-dict keys, ours ↔ timm (``S.B`` = stage and block index; ``*`` = BN's
``weight, bias, running_mean, running_var, num_batches_tracked``):

=====================================  ==========================================  =================
ours                                   timm                                        where
=====================================  ==========================================  =================
``stem.conv.weight``                   ``conv_stem.weight``                        stem
``stem.bn.*``                          ``bn1.*``                                   stem
``blocks.S.B.conv.weight``             ``blocks.S.B.conv.weight``                  ConvBnAct block
``blocks.S.B.bn.*``                    ``blocks.S.B.bn1.*``                        ConvBnAct block
``blocks.S.B.conv_exp.conv.weight``    ``blocks.S.B.conv_exp.weight``              FusedIB
``blocks.S.B.conv_exp.bn.*``           ``blocks.S.B.bn1.*``                        FusedIB
``blocks.S.B.conv_pwl.conv.weight``    ``blocks.S.B.conv_pwl.weight``              FusedIB
``blocks.S.B.conv_pwl.bn.*``           ``blocks.S.B.bn2.*``                        FusedIB
``blocks.S.B.{dw_start,pw_exp,dw_mid,  identical                                   UIB
pw_proj}.{conv.weight,bn.*}``
``blocks.S.B.layer_scale.gamma``       identical                                   UIB, MQA
``blocks.S.B.norm.*``                  identical                                   MQA pre-norm
``blocks.S.B.attn.query.proj.weight``  identical                                   MQA
``blocks.S.B.attn.{key,value}.         identical                                   MQA
{down_conv.weight,norm.*,proj.weight}``
``blocks.S.B.attn.output.proj.weight`` identical                                   MQA
``conv_head.conv.weight``              ``conv_head.weight``                        head
``conv_head.bn.*``                     ``norm_head.*``                             head
``classifier.{weight,bias}``           identical                                   classifier
=====================================  ==========================================  =================

The ConvBnAct rename ``bn1`` → ``bn`` applies only to blocks whose timm module has a ``conv`` tensor
directly (ConvBnAct); a FusedIB's ``bn1``/``bn2`` map to ``conv_exp.bn``/``conv_pwl.bn``.

Deploy form (``deploy=True`` / ``reparameterize_model``): every ``*.bn`` and ``attn.*.norm``
disappears and its conv gains ``.bias``; ``layer_scale.gamma`` is folded into ``pw_proj`` / ``attn.output.proj``;
the MQA pre-norm ``norm`` is folded into ``attn.query.proj`` (and ``attn.{key,value}.proj`` without K/V
down-sampling), which gain a bias; with K/V down-sampling it survives as ``kv_norm.{scale,shift}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mobilebone.models.mobilenetv4.specs import SPECS, MobileNetV4Spec

if TYPE_CHECKING:
    from mobilebone.models.mobilenetv4.model import MobileNetV4

__all__ = ["SPECS", "MobileNetV4", "MobileNetV4Spec"]


def __getattr__(name: str) -> Any:
    # The network needs torch; the registry imports this package for its torch-free specs and cfgs.
    if name == "MobileNetV4":
        from mobilebone.models.mobilenetv4.model import MobileNetV4

        return MobileNetV4
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
