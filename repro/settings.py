"""What a network learns from, as one frozen value: `TrainingSettings`.

Built once from a profile (its `--set` overrides applied) and the device it trains on, written whole as the run
key's JSON (repro.runs.RunSpec.config), and read back from that JSON to train (repro.worker.train_group). No
torch here: planning and judging read it too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from repro import models
from repro.budget import recipe_from_config
from repro.profiles import Arch, Profile, Recipe


@dataclass(frozen=True)
class Numerics:
    """How the arithmetic is done, beyond the recipe (the key's "numerics")."""

    device: str  # the device type: 'cpu' or 'cuda'
    precision: str  # 'bf16' or 'fp32' (repro.numerics.precision_for): the one autocast context of every pass
    memory_format: str  # 'channels_last' or 'contiguous'
    compile: bool  # torch.compile the layers (applied on CUDA only)
    divergence_loss: float  # a training loss above this (or non-finite) marks the run diverged

    @classmethod
    def for_profile(cls, profile: Profile, device: str) -> "Numerics":
        from repro.numerics import device_type, precision_for

        return cls(device=device_type(device), precision=precision_for(profile, device),
                   memory_format="channels_last" if profile.channels_last else "contiguous",
                   compile=bool(profile.compile), divergence_loss=float(profile.divergence_loss))

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "channels_last"


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that changes the numbers a network learns: the data it is trained on, the architecture, the
    recipe, the numerics, whether the GPU is held deterministic and whether its step is replayed as a CUDA graph.
    So it is the run key's config: one value of it is one computation.

    Not in here, because they change when or where the work is done but not what is learned: the store, when
    checkpoints are written (`checkpoint_every`, `checkpoint_minutes`: a resumed run continues exactly where it
    stopped) and which GPU of its type trains (`cuda:1` or `cuda:0`). They are `repro.train.Group.build`'s
    keyword arguments.
    """

    dataset: str
    image_size: int
    arch: Arch
    recipe: Recipe  # its cpu_bf16 (a request) is decided into numerics.precision, and kept False here
    num_classes: int
    images_per_class: int
    train_per_class: int
    val_per_class: int
    numerics: Numerics
    deterministic: bool = True
    cuda_graphs: bool = False
    natural_classes: tuple[str, ...] = ()  # a --natman file's natural half (natural/man-made runs only)

    @classmethod
    def from_profile(cls, profile: Profile, device: str | None = None) -> "TrainingSettings":
        """The settings of a profile's networks on `device` (default: where this machine trains them,
        repro.numerics.training_device). The natural/man-made runs of a --natman file add its classes
        (repro.runs.specs_for)."""
        from repro.numerics import training_device

        return cls(dataset=profile.dataset, image_size=profile.image_size, arch=profile.arch,
                   recipe=dataclasses.replace(profile.recipe, cpu_bf16=False), num_classes=profile.num_classes,
                   images_per_class=profile.images_per_class, train_per_class=profile.train_per_class,
                   val_per_class=profile.val_per_class,
                   numerics=Numerics.for_profile(profile, device or training_device(profile)),
                   deterministic=profile.deterministic, cuda_graphs=profile.cuda_graphs)

    @classmethod
    def from_config(cls, config: dict, profile: Profile | None = None,
                    device: str | None = None) -> "TrainingSettings":
        """The settings a run key's config holds. A key written before it held the numerics (device, precision,
        ...) gets them as `profile` (the one that planned it) gives them on `device`, as a new key would."""
        if "numerics" in config:
            numerics = Numerics(**config["numerics"])
        elif profile is None:
            raise ValueError("this run key has no numerics (it was planned before they were in the key): "
                             "its profile decides them")
        else:
            from repro.numerics import training_device

            numerics = Numerics.for_profile(profile, device or training_device(profile))
        arch = config["arch"]
        return cls(dataset=config["dataset"], image_size=config["image_size"],
                   arch=Arch(**{**arch, "widths": tuple(arch["widths"])}),
                   recipe=dataclasses.replace(recipe_from_config(config["recipe"]), cpu_bf16=False),
                   num_classes=config["num_classes"], images_per_class=config["images_per_class"],
                   train_per_class=config["train_per_class"], val_per_class=config["val_per_class"],
                   numerics=numerics, deterministic=not config.get("nondeterministic", False),
                   cuda_graphs=config.get("cuda_graphs", False),
                   natural_classes=tuple(config.get("natural_classes", ())))

    def with_precision(self, precision: str) -> "TrainingSettings":
        """The same settings in another precision ('bf16' or 'fp32'), as decided elsewhere (a measurement of a
        precision, a test of bf16 on a CPU that only emulates it)."""
        return dataclasses.replace(self, numerics=dataclasses.replace(self.numerics, precision=precision))

    def to_config(self) -> dict:
        """The run key's config (repro.runs.canonical makes it the key's JSON)."""
        recipe = dataclasses.asdict(self.recipe)
        del recipe["cpu_bf16"]
        arch = dataclasses.asdict(self.arch)
        if arch["name"] == models.DEFAULT:  # the network of every key before architectures had names
            del arch["name"]
        config = {"dataset": self.dataset, "image_size": self.image_size, "arch": arch,
                  "recipe": recipe, "num_classes": self.num_classes, "images_per_class": self.images_per_class,
                  "train_per_class": self.train_per_class, "val_per_class": self.val_per_class,
                  "numerics": dataclasses.asdict(self.numerics)}
        # each only when set: the keys of the runs planned before it existed stay what they were
        if not self.deterministic:
            config["nondeterministic"] = True
        if self.cuda_graphs:  # replayed steps are checked against eager ones on a GPU, but kept apart all the same
            config["cuda_graphs"] = True
        if self.natural_classes:
            config["natural_classes"] = sorted(self.natural_classes)
        return config
