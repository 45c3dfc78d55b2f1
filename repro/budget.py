"""What a network trains: iterations from a recipe and a training set, the learning-rate schedule, the
iterations it is tested at, and the record every result carries of what its network trained (iterations,
examples seen, epochs, final learning rate). No torch here: the results table derives the record of runs
stored before it existed from their recipe (repro.results), and the claims compare it
(repro.premises.trained_alike).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from repro.profiles import Recipe

# train images, val images per class, classes, natural classes (the natman split's half A)
DATASET_SIZES = {"imagenet": (1_281_167, 50, 1000, 449), "tiny-imagenet": (100_000, 50, 200, 72)}


def lr_multipliers(recipe: Recipe, total: int) -> list[float]:
    """The learning-rate multiplier of each iteration: linear warm-up, then steps of `gamma` or a linear decay
    to zero at the last iteration (budget-aware: Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020)."""
    warm = int(recipe.warmup * total)
    steps = [int(f * total) for f in recipe.lr_steps]
    out = []
    for i in range(total):
        if recipe.decay == "linear":
            m = 1.0 if i < warm else (total - i) / (total - warm)
        else:
            m = recipe.gamma ** sum(i >= s for s in steps)
        if i < warm:
            m *= (i + 1) / warm
        out.append(m)
    return out


def iterations(recipe: Recipe, num_train: int) -> tuple[int, int]:
    """(iterations per epoch, iterations in all) of a network trained by `recipe` on `num_train` images."""
    per_epoch = max(1, num_train // recipe.batch_size)
    return per_epoch, max(1, round(recipe.epochs * per_epoch))


def eval_points(recipe: Recipe, total: int) -> list[int]:
    """The iterations after which a network of `total` iterations is tested on its validation set."""
    return sorted({max(1, round(total * k / recipe.evals)) for k in range(1, recipe.evals + 1)})


def recipe_from_config(recipe: dict) -> Recipe:
    """The Recipe of a run key's JSON (repro.runs.training_config: its 'recipe', lists for tuples)."""
    return Recipe(**{**recipe, "lr_steps": tuple(recipe.get("lr_steps", ()))})


@dataclass(frozen=True)
class Trained:
    """What one network trained. None: not recorded (a table from elsewhere that does not say)."""

    iterations: int | None = None
    examples_seen: int | None = None  # iterations x batch size
    epochs: float | None = None  # examples seen / training images of its half
    final_lr: float | None = None  # the learning rate of its last iteration


def trained(recipe: Recipe, total: int, num_train: int | None) -> Trained:
    """The record of a network trained `total` iterations by `recipe` on `num_train` images (None: unknown)."""
    examples = total * recipe.batch_size
    return Trained(iterations=total, examples_seen=examples,
                   epochs=examples / num_train if num_train else None,
                   final_lr=recipe.lr * lr_multipliers(recipe, total)[-1])


def same_training(a: Trained, b: Trained) -> list[str]:
    """The fields in which two networks' records differ (of those both record): [] when trained alike. The
    epochs and the final learning rate are compared to 1% (rounding of iterations per epoch), the counts
    exactly."""
    out = []
    for name in ("iterations", "examples_seen"):
        x, y = getattr(a, name), getattr(b, name)
        if x is not None and y is not None and x != y:
            out.append(name)
    for name in ("epochs", "final_lr"):
        x, y = getattr(a, name), getattr(b, name)
        if x is not None and y is not None and not math.isclose(x, y, rel_tol=0.01, abs_tol=1e-12):
            out.append(name)
    return out


def train_images_per_class(profile: dict) -> float | None:
    """Training images per class of a profile (as a dict: a results.json's session['profile']), None when
    its dataset's size is not known here (a folder of images)."""
    dataset = profile.get("dataset") or ""
    if dataset in DATASET_SIZES:
        total, _, classes, _ = DATASET_SIZES[dataset]
        per_class = total / classes
    elif dataset == "synthetic" and profile.get("images_per_class"):
        per_class = float(profile["images_per_class"])
    else:
        return None
    if profile.get("train_per_class"):
        per_class = min(per_class, profile["train_per_class"])
    return per_class
