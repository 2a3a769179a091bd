"""Named roofline devices: peak multiply-adds per second and memory bandwidth from vendors' public specs.

Kept as data (``mobilebone/data/roofline_devices.csv``), one row per device × precision with the number as
the vendor states it and the page it comes from. Vendors state *operations* per second (one MAC = two
operations) and NVIDIA states Tensor-Core peaks with 2:4 structured sparsity (twice the dense rate);
``peak_macs`` undoes both, since the roofline's MACs are dense. These are datasheet peaks, never reached
by a real network: the roofline uses their ratio (the ridge point) as much as their size. Torch-free, so
the command line can list the presets in its help.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mobilebone.analysis.roofline import Hardware

PRECISIONS = (
    "fp32",
    "fp16",
    "int8",
)  # the roofline's (analysis.roofline.BYTES_PER_ELEMENT; a test ties them)
PACKAGED = "roofline_devices.csv"
COLUMNS = ("device", "precision", "stated_tops", "sparse", "bandwidth_gbs", "description", "source", "notes")


@dataclass(frozen=True)
class DevicePreset:
    """One device at one precision, as its vendor's public specification states it."""

    device: str
    precision: str
    stated_tops: float  # tera-operations (or TFLOPS) per second as stated, sparse if ``sparse``
    sparse: bool
    bandwidth_gbs: float
    description: str
    source: str
    notes: str = ""

    @property
    def peak_macs(self) -> float:
        """Dense multiply-accumulates per second: stated ops / 2 (ops per MAC), / 2 again if stated sparse."""
        return self.stated_tops * 1e12 / 2 / (2 if self.sparse else 1)

    def hardware(self) -> Hardware:
        """The roofline's view of this device."""
        from mobilebone.analysis.roofline import Hardware

        label = f"{self.device} ({self.description}, {self.precision}; vendor peaks)"
        return Hardware(label, self.peak_macs, self.bandwidth_gbs * 1e9)


def parse_presets(text: str, *, origin: str) -> list[DevicePreset]:
    """Presets of a devices CSV; a bad header or value raises a one-line ``ValueError``."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"{origin}: columns must be {', '.join(COLUMNS)}")
    presets = []
    for line, row in enumerate(reader, start=2):
        where = f"{origin} line {line}"
        if row["precision"] not in PRECISIONS:
            raise ValueError(f"{where}: precision {row['precision']!r} is not one of {', '.join(PRECISIONS)}")
        if row["sparse"] not in ("true", "false"):
            raise ValueError(f"{where}: sparse must be true or false, got {row['sparse']!r}")
        try:
            tops, bandwidth = float(row["stated_tops"]), float(row["bandwidth_gbs"])
        except ValueError:
            raise ValueError(f"{where}: stated_tops and bandwidth_gbs must be numbers") from None
        if not (tops > 0 and bandwidth > 0) or not row["source"].startswith("https://"):
            raise ValueError(f"{where}: peaks must be > 0 and source an https:// page")
        presets.append(
            DevicePreset(
                row["device"],
                row["precision"],
                tops,
                row["sparse"] == "true",
                bandwidth,
                row["description"],
                row["source"],
                row["notes"],
            )
        )
    return presets


def device_presets() -> dict[tuple[str, str], DevicePreset]:
    """The packaged presets by (device, precision)."""
    text = (resources.files("mobilebone") / "data" / PACKAGED).read_text(encoding="utf-8")
    return {(p.device, p.precision): p for p in parse_presets(text, origin=PACKAGED)}


def preset_names() -> list[str]:
    """Device names that have at least one preset, in file order."""
    return list(dict.fromkeys(device for device, _ in device_presets()))


def preset_hardware(device: str, precision: str) -> Hardware:
    """The roofline hardware of a named device at a precision; unknown pairs raise a one-line ``ValueError``."""
    presets = device_presets()
    if (device, precision) in presets:
        return presets[(device, precision)].hardware()
    have = [p for d, p in presets if d == device]
    if not have:
        raise ValueError(
            f"unknown device {device!r}; presets: {', '.join(preset_names())} (or cpu: measured)"
        )
    raise ValueError(f"device {device!r} has no {precision} preset; it has {', '.join(have)} (--precision)")
