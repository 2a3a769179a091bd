"""Data for training: ImageFolder or the embedded set, train/eval transforms, resumable samplers.

Determinism: the sample order of an epoch comes from ``(seed, epoch)`` alone and the augmentation of a
sample from ``(seed, epoch, index)`` alone (each sample runs its transform under its own seeded RNG), so a
run resumed mid-epoch sees exactly the batches an uninterrupted run would, whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class BadImageError(ValueError):
    """An image file that cannot be decoded (corrupt, truncated, not an image, a decompression bomb).

    Raised in a DataLoader worker, it reaches the main process re-created from the worker's whole
    traceback text (``torch.utils.data`` passes it as ``message=``); the constructor keeps only the
    last line, this error's own message, so the user still sees one line.
    """

    message = "unreadable image"  # a truthy class attribute: DataLoader re-raises with ``message=``

    def __init__(self, text: str = "", *, path: str = "", message: str | None = None) -> None:
        self.path = path
        if message is not None:
            prefix = f"{type(self).__name__}: "
            lines = [line for line in message.strip().splitlines() if prefix in line]
            text = lines[-1].split(prefix, 1)[1] if lines else message.strip().splitlines()[-1]
        super().__init__(text)


def load_image(path: str) -> Any:
    """Open an image as RGB, or raise ``BadImageError`` naming the file and the cause."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Image.DecompressionBombError as err:
        raise BadImageError(f"{path}: refused as a decompression bomb ({err})", path=path) from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise BadImageError(f"{path}: cannot decode image ({type(err).__name__}: {err})", path=path) from None


@dataclass(frozen=True)
class Skipped:
    """Stands in for a sample whose image could not be read (``--skip-bad-images``)."""

    path: str


def skipping_collate(collate: Callable[[list[Any]], Any]) -> Callable[[list[Any]], tuple[Any, list[str]]]:
    """Wrap ``collate``: drop ``Skipped`` samples, return ``(batch or None, paths skipped)``."""

    def wrapped(samples: list[Any]) -> tuple[Any, list[str]]:
        skipped = [s.path for s in samples if isinstance(s, Skipped)]
        kept = [s for s in samples if not isinstance(s, Skipped)]
        return (collate(kept) if kept else None), skipped

    return wrapped


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


def _is_image_file(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS)


def image_folder(root: Path) -> Any:
    """A torchvision ``ImageFolder`` of ``root`` (RGB PIL images), with a one-line error when it is empty.

    An unreadable image raises ``BadImageError`` naming the file when it is loaded.
    """
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(root), loader=load_image, is_valid_file=_is_image_file)
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
    if augment == "autoaugment":  # MobileOne S2–S4 (MobileOne paper §4): the ImageNet policy
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


class Transformed(Dataset[Any]):
    """``(transform(image), label)``; with ``seed`` set, each sample's randomness is seeded by (seed, epoch, index).

    With ``joint`` the transform takes and returns the pair, ``transform(image, target)``, so boxes and masks
    move with the image (``torchvision.transforms.v2``). With ``skip_bad`` an unreadable image yields ``Skipped(path)`` (see ``skipping_collate``) instead of
    raising ``BadImageError``.
    """

    def __init__(
        self,
        base: Any,
        transform: Callable[..., Any],
        seed: int | None = None,
        *,
        skip_bad: bool = False,
        joint: bool = False,
    ) -> None:
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, 0
        self.skip_bad, self.joint = skip_bad, joint

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        try:
            image, label = self.base[index]
        except BadImageError as err:
            if not self.skip_bad:
                raise
            return Skipped(err.path or str(err))
        if self.seed is None:
            return self._apply(image, label)
        # torchvision draws from the global torch RNG: fork it so training's own RNG stream is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, self.epoch, index))
            return self._apply(image, label)

    def _apply(self, image: Any, label: Any) -> Any:
        if self.joint:
            return self.transform(image, label)
        return self.transform(image), label


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
    collate_fn: Callable[[list[Any]], Any] | None = None,
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
        collate_fn=collate_fn,
        persistent_workers=False,  # workers must see the dataset's current epoch
    )


def eval_loader(
    dataset: Transformed,
    *,
    batch_size: int,
    workers: int,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader[Any]:
    """A single-process (one shard) evaluation loader over all of ``dataset``, in order, nothing dropped."""
    return make_loader(
        dataset,
        ShardSampler(dataset, rank=0, world_size=1),
        batch_size=batch_size,
        workers=workers,
        drop_last=False,
        pin_memory=False,
        seed=0,
        collate_fn=collate_fn,
    )


@dataclass
class Loaders:
    """The run's loaders: train (resumable sampler) and val (sharded); batches are ``(batch, skipped)``."""

    train: DataLoader[Any]
    val: DataLoader[Any]
    sampler: ResumableSampler
    steps_per_epoch: int


def build_loaders(
    train: Any,
    val: Any,
    *,
    collate: Callable[[list[Any]], Any],
    batch_size: int,
    workers: int,
    seed: int,
    rank: int,
    world_size: int,
    pin_memory: bool,
) -> Loaders:
    """Loaders for a task's data: deterministic epoch order, skipped samples reported beside each batch."""
    sampler = ResumableSampler(train, rank=rank, world_size=world_size, seed=seed, drop_last=False)
    drop_last = len(sampler.inner) >= batch_size
    steps_per_epoch = len(sampler.inner) // batch_size if drop_last else 1
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "workers": workers,
        "pin_memory": pin_memory,
        "seed": seed,
    }
    return Loaders(
        train=make_loader(
            train, sampler, drop_last=drop_last, collate_fn=skipping_collate(collate), **common
        ),
        val=make_loader(
            val,
            ShardSampler(val, rank=rank, world_size=world_size),
            drop_last=False,
            collate_fn=skipping_collate(collate),
            **common,
        ),
        sampler=sampler,
        steps_per_epoch=steps_per_epoch,
    )
