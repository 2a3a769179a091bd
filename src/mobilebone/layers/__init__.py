"""Building blocks shared by the model families."""

from mobilebone.layers.attention import MultiQueryAttention2d, set_attention_impl
from mobilebone.layers.classifier import ClassifierHead
from mobilebone.layers.conv_norm_act import ConvNormAct, conv_with_weights
from mobilebone.layers.drop_path import DropPath
from mobilebone.layers.layer_scale import LayerScale2d, ScaleShift2d
from mobilebone.layers.squeeze_excite import SqueezeExcite, make_divisible

__all__ = [
    "ClassifierHead",
    "ConvNormAct",
    "DropPath",
    "LayerScale2d",
    "MultiQueryAttention2d",
    "ScaleShift2d",
    "SqueezeExcite",
    "conv_with_weights",
    "make_divisible",
    "set_attention_impl",
]
