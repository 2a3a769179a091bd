"""The architectural-block study (MobileOne §3, Table 1(b)): the 30-layer net plain, with SE, with skips.

The paper's point: Squeeze-Excite's global pool is a synchronisation point and skip connections keep
an extra activation tensor alive until the merge (memory traffic), so both cost latency beyond their
MACs. MobileOne's answer is train-time branches that fold into one conv: the last two cases time the
same network built from MobileOne units before and after ``reparameterize_model``.
"""

from __future__ import annotations

from functools import partial

from mobilebone.studies.networks import StudyNet
from mobilebone.studies.run import StudyCase

TITLE = "the 30-layer network with Squeeze-Excite, skip connections, and MobileOne units"
# MobileOne branches per unit in the train-time case: k = 4, as MobileOne-S0 (Apple's ml-mobileone mobileone.py: num_conv_branches 4 for s0).
TRAIN_BRANCHES = 4
# iPhone-12 latencies (ms) as recalled from MobileOne (Vasu et al. 2023, §4) — not checked against the paper.
PAPER_MS = {"plain": 1.53, "se": 2.10, "skip": 2.62}


def cases(input_size: int = 224, batch_size: int = 1) -> list[StudyCase]:
    """Plain, +SE, +skip, +SE+skip, MobileOne train-time (k=4), MobileOne fused."""
    shape = (batch_size, 3, input_size, input_size)
    specs = [
        ("plain", partial(StudyNet), True, "conv-BN-ReLU only, no branches"),
        ("se", partial(StudyNet, se=True), True, "+ Squeeze-Excite after each block's depthwise conv (14)"),
        (
            "skip",
            partial(StudyNet, skip=True),
            True,
            "+ identity shortcut on every shape-preserving block (10)",
        ),
        ("se_skip", partial(StudyNet, se=True, skip=True), True, "+ both"),
        (
            "mobileone_train",
            partial(StudyNet, unit="mobileone", branches=TRAIN_BRANCHES),
            False,
            f"every conv a MobileOne unit, train-time form: {TRAIN_BRANCHES} conv-BN branches + 1×1 scale "
            "branch + BN identity, summed",
        ),
        (
            "mobileone_fused",
            partial(StudyNet, unit="mobileone", branches=TRAIN_BRANCHES),
            True,
            "the same network after reparameterize_model: one conv per unit (the plain net again)",
        ),
    ]
    return [
        StudyCase(
            name=name,
            build=build,
            input_shape=shape,
            group="30-layer net",
            description=text,
            deploy=deploy,
            paper=f"{PAPER_MS[name]:.2f} ms (iPhone 12, unverified)" if name in PAPER_MS else "",
        )
        for name, build, deploy, text in specs
    ]
