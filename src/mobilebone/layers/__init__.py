"""Building blocks shared by the model families."""

from mobilebone.layers.classifier import ClassifierHead
from mobilebone.layers.conv_norm_act import ConvNormAct
from mobilebone.layers.drop_path import DropPath
from mobilebone.layers.squeeze_excite import SqueezeExcite, make_divisible

__all__ = ["ClassifierHead", "ConvNormAct", "DropPath", "SqueezeExcite", "make_divisible"]
