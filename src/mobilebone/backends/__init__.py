"""Inference backends beside PyTorch: ONNX Runtime (fp32, int8, tuned int8), OpenVINO (f32, bf16, int8 via NNCF),
ExecuTorch with the XNNPACK delegate (fp32, int8) and LiteRT. Each module builds an ``Engine`` (a deployable
artifact plus its inference call); the runtime table (``mobilebone.analysis.runtimes``) names the builders and
imports them on use, and ``mobilebone.deploy`` chooses between them.
"""
