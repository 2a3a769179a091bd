"""Structural reparameterization: pure fusion math (`fuse`) and the model walker (`apply`)."""

from mobilebone.reparam.apply import reparameterize_model
from mobilebone.reparam.fuse import bn_scale_shift, fuse_conv_bn, identity_kernel, pad_kernel

__all__ = ["bn_scale_shift", "fuse_conv_bn", "identity_kernel", "pad_kernel", "reparameterize_model"]
