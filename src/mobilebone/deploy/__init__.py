"""Find the fastest verified way to deploy a model on this CPU: OpenVINO, ExecuTorch (XNNPACK), ONNX Runtime,
LiteRT; float32, bfloat16 and int8 (``search``, ``mobilebone deploy``)."""

from mobilebone.deploy.report import CandidateResult, DeployReport
from mobilebone.deploy.runtimes import DEPLOY_RUNTIME_NAMES, DEPLOY_RUNTIMES, get_runtime
from mobilebone.deploy.search import search

__all__ = [
    "DEPLOY_RUNTIMES",
    "DEPLOY_RUNTIME_NAMES",
    "CandidateResult",
    "DeployReport",
    "get_runtime",
    "search",
]
