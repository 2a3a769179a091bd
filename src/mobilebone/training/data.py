"""Data for training: ImageFolder or the embedded set, train/eval transforms, resumable samplers.

Determinism: the sample order of an epoch comes from ``(seed, epoch)`` alone and the augmentation of a
sample from ``(seed, epoch, index)`` alone (each sample runs its transform under its own seeded RNG), so a
run resumed mid-epoch sees exactly the batches an uninterrupted run would, whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def check_image_folder(root: str | Path) -> tuple[Path, Path]:
    """``root/train`` and ``root/val`` of an ImageFolder layout, or a one-line error saying what is wrong."""
    path = Path(root).expanduser()
    layout = "expected DIR/train/<class>/<image> and DIR/val/<class>/<image>"
    if not path.exists():
        raise FileNotFoundError(f"--data {root}: no such directory; {layout}")
    if not path.is_dir():
        raise ValueError(f"--data {root}: not a directory; {layout}")
    splits = []
    for split in ("train", "val"):
        folder = path / split
        if not folder.is_dir():
            raise ValueError(f"--data {root}: has no {split}/ folder; {layout}")
        splits.append(folder)
    return splits[0], splits[1]


def image_folder(root: Path) -> Any:
    """A torchvision ``ImageFolder`` of ``root`` (PIL images), with a one-line error when it is empty."""
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(root), is_valid_file=lambda p: p.lower().endswith(IMG_EXTENSIONS))
    except FileNotFoundError as err:  # no class folders, or a class folder without images
        raise ValueError(f"{root}: {err}; put images in {root}/<class>/") from None


def train_transform(
    input_size: int,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    interpolation: str,
    min_crop: float,
    augment: str,
) -> Callable[[Any], torch.Tensor]:
    """Random-resized crop + horizontal flip (+ AutoAugment / RandAugment), to a normalized float tensor."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import v2 as T

    mode = InterpolationMode(interpolation)
    steps: list[Any] = [
        T.RGB(),
        T.RandomResizedCrop(input_size, scale=(min_crop, 1.0), interpolation=mode, antialias=True),
        T.RandomHorizontalFlip(),
    ]
    if augment == "autoaugment":  # MobileOne S2–S4 (REFERENCE §1.5): the ImageNet policy
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=mode))
    elif augment == "randaugment":  # timm MNv4 recipes use RandAugment (rand-mN); torchvision's version
        steps.append(T.RandAugment(num_ops=2, magnitude=9, interpolation=mode))
    elif augment != "basic":
        raise ValueError(f"unknown augment {augment!r}; use basic, autoaugment or randaugment")
    steps += [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(list(mean), list(std))]
    return T.Compose(steps)


def _mix(*values: int) -> int:
    """A 63-bit seed from several integers (SplitMix64-style, so neighbouring inputs do not collide)."""
    state = 0x9E3779B97F4A7C15
    for v in values:
        state = (state ^ (v + 0x9E3779B97F4A7C15 + (state << 6) + (state >> 2))) & 0xFFFFFFFFFFFFFFFF
        state = (state * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        state ^= state >> 31
    return state & 0x7FFFFFFFFFFFFFFF


class Transformed(Dataset[tuple[torch.Tensor, int]]):
    """``(transform(image), label)``; with ``seed`` set, each sample's randomness is seeded by (seed, epoch, index)."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor], seed: int | None = None) -> None:
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[index]
        if self.seed is None:
            return self.transform(image), int(label)
        # torchvision draws from the global torch RNG: fork it so training's own RNG stream is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, self.epoch, index))
            return self.transform(image), int(label)


class ResumableSampler(Sampler[int]):
    """This rank's shuffled share of an epoch (same order as ``DistributedSampler``), minus the samples done."""

    def __init__(self, dataset: Sized, *, rank: int, world_size: int, seed: int, drop_last: bool) -> None:
        from torch.utils.data.distributed import DistributedSampler

        self.inner: DistributedSampler[Any] = DistributedSampler(
            dataset,  # type: ignore[arg-type]
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=drop_last,
        )
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Order of ``epoch``; the first ``skip`` samples (already trained on before a resume) are dropped."""
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, …`` in order: every sample evaluated exactly once across ranks."""

    def __init__(self, dataset: Sized, *, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, len(dataset), world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def make_loader(
    dataset: Dataset[Any],
    sampler: Sampler[int],
    *,
    batch_size: int,
    workers: int,
    drop_last: bool,
    pin_memory: bool,
    seed: int,
) -> DataLoader[Any]:
    """A DataLoader whose worker seeding uses its own generator, never the global RNG (resume stays exact)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        generator=generator,
        persistent_workers=False,  # workers must see the dataset's current epoch
    )
