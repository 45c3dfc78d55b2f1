"""The training loop: a group of networks of one target, trained on the same batches in the same order.

One network alone is a group of one, so the shared sweep and one-at-a-time training run the same code.
Everything random is a function of (seed, iteration): the batch order of an epoch, the crops and mirrors of
a batch, each network's dropout masks. So a group gives each network exactly the numbers it would get
alone, and a run resumed from a checkpoint continues exactly where it stopped (on the CPU).

Frozen networks copied from the same source (a base, or the random control's random network) share one
forward pass through the frozen layers per batch; nothing below a network's first trainable layer is
back-propagated.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from repro.data.base import ImageSet
from repro.loader import BatchStream, val_chunks
from repro.models import Net
from repro.profiles import Arch, Recipe
from repro.runs import MAX_LAYER, RunSpec, stable_seed
from repro.transfer import build_treatment, prefix_source_id, random_source, transfer_layers

# ImageNet channel statistics; the paper subtracted the mean image, which at these scales is near-constant.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


class Diverged(Exception):
    pass


@dataclass
class Task:
    """What a group trains on: one half of one split."""

    train: ImageSet
    val: ImageSet
    num_classes: int


@dataclass
class Member:
    spec: RunSpec
    net: Net
    optimizer: torch.optim.Optimizer | None
    start: int  # layers 1..start are frozen and computed by the shared source; 0 = trained from the input
    source: str | None
    curve: list = field(default_factory=list)  # [(iteration, top1)]
    losses: list = field(default_factory=list)  # [(iteration, mean training loss since the last entry)]
    loss_sum: float = 0.0
    loss_count: int = 0
    diverged: bool = False
    done: bool = False


def schedule(recipe: Recipe, total: int) -> list[float]:
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
    per_epoch = max(1, num_train // recipe.batch_size)
    return per_epoch, max(1, round(recipe.epochs * per_epoch))


def eval_points(recipe: Recipe, total: int) -> list[int]:
    return sorted({max(1, round(total * k / recipe.evals)) for k in range(1, recipe.evals + 1)})


def paper_metric(curve: list, k: int) -> float:
    """The paper's score: the mean of the k highest validation tests."""
    values = sorted((v for _, v in curve), reverse=True)[:k]
    return sum(values) / len(values) if values else float("nan")


def epoch_order(data_seed: int, epoch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(stable_seed(data_seed, "epoch", epoch))
    return torch.randperm(n, generator=g)


def batch_indices(data_seed: int, epoch: int, n: int, batch_size: int, j: int) -> torch.Tensor:
    return epoch_order(data_seed, epoch, n)[j * batch_size:(j + 1) * batch_size]


def augment(x: torch.Tensor, crop: int, mirror: bool, seed: int | None) -> torch.Tensor:
    """Random crops and mirrors (seed given) or the centre crop (seed None); uint8 in, normalised float out."""
    b, _, s, _ = x.shape
    if seed is None:
        o = (s - crop) // 2
        x = x[:, :, o:o + crop, o:o + crop]
    else:
        g = torch.Generator().manual_seed(seed)
        oy = torch.randint(0, s - crop + 1, (b,), generator=g)
        ox = torch.randint(0, s - crop + 1, (b,), generator=g)
        flip = torch.rand(b, generator=g) < 0.5 if mirror else torch.zeros(b, dtype=torch.bool)
        idx = torch.arange(crop)
        rows = (oy[:, None] + idx).to(x.device)
        cols = (ox[:, None] + idx)
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)
        x = x[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        x = x.permute(0, 3, 1, 2)
    x = x.float()
    return (x - MEAN.to(x.device)) / STD.to(x.device)


def param_groups(net: Net, recipe: Recipe) -> list[dict]:
    """Conv/linear weights get weight decay; their biases get none and `bias_lr_mult` x the rate (as in the
    paper); batch-norm scales and shifts get neither."""
    groups = {"weight": [], "bias": [], "norm": []}
    for name, p in net.named_parameters():
        if p.requires_grad:
            kind = name.rsplit(".", 1)[1] if ".weights." in name else "norm"
            groups[kind].append(p)
    return [
        {"params": groups["weight"], "weight_decay": recipe.weight_decay, "lr_mult": 1.0},
        {"params": groups["bias"], "weight_decay": 0.0, "lr_mult": recipe.bias_lr_mult},
        {"params": groups["norm"], "weight_decay": 0.0, "lr_mult": 1.0},
    ]


def compile_layers(net: Net) -> Net:
    """torch.compile every layer without dropout, in place (state-dict names unchanged). Layers with dropout
    stay eager: their masks come from a per-network CPU generator, which would break the graph."""
    import torch._dynamo

    # Every layer of every network runs Layer.forward: dynamo keeps one graph per layer shape and mode
    # (training, frozen, evaluation) under that one function, more than its default limit of 8.
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, limit, max(getattr(config, limit), 64))
    for layer in net.layers:
        if not (layer.dropout > 0):
            layer.compile()
    return net


def make_optimizer(net: Net, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    fused = device.type == "cuda"
    return torch.optim.SGD(param_groups(net, recipe), lr=recipe.lr, momentum=recipe.momentum,
                           **({"fused": True} if fused else {"foreach": True}))


def _state(member: Member) -> dict[str, torch.Tensor]:
    tensors = {f"net.{k}": v for k, v in member.net.state_dict().items()}
    if member.optimizer is not None:
        names = {p: n for n, p in member.net.named_parameters()}
        for group in member.optimizer.param_groups:
            for p in group["params"]:
                buf = member.optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    tensors[f"momentum.{names[p]}"] = buf
    return tensors


def _restore(member: Member, tensors: dict[str, torch.Tensor], device) -> None:
    member.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    params = dict(member.net.named_parameters())
    for k, v in tensors.items():
        if k.startswith("momentum."):
            member.optimizer.state[params[k[9:]]]["momentum_buffer"] = v.to(device)


class Group:
    """Networks of one target trained together. Build with `Group.build`, then `run`."""

    def __init__(self, members, sources, task, arch, recipe, device, bf16, channels_last, store=None,
                 checkpoint_every=0, divergence_loss=1e3):
        self.members, self.sources, self.task = members, sources, task
        self.arch, self.recipe, self.device = arch, recipe, device
        self.autocast = (bf16 and device.type == "cuda") or (recipe.cpu_bf16 and device.type == "cpu")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.store, self.checkpoint_every, self.divergence_loss = store, checkpoint_every, divergence_loss
        self.per_epoch, self.total = iterations(recipe, len(task.train))
        self.lr = schedule(recipe, self.total)
        self.evals = eval_points(recipe, self.total)
        self.data_seed = members[0].spec.data_seed
        if any(m.spec.data_seed != self.data_seed for m in members):
            raise ValueError("a group must share one target and replicate (one data seed)")
        # file-backed training sets (ILSVRC-2012) are decoded ahead in worker processes, same batches
        self.stream = None if task.train.images is not None else BatchStream(
            task.train, self.data_seed, self.per_epoch, recipe.batch_size, self.total, device)

    @classmethod
    def build(cls, specs: list[RunSpec], task: Task, parents: dict[str, dict], *, arch: Arch, recipe: Recipe,
              device="cpu", bf16=True, channels_last=True, store=None, checkpoint_every=0, divergence_loss=1e3,
              compile=False):
        device = torch.device(device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once
        fmt = torch.channels_last if channels_last else torch.contiguous_format

        def make_net():
            return Net(arch, task.num_classes, recipe.crop)

        members, sources = [], {}
        for spec in specs:
            parent = parents.get(spec.parent.key) if spec.parent else None
            net = build_treatment(spec, make_net, parent).to(device, memory_format=fmt)
            source = prefix_source_id(spec)
            if source and source not in sources:
                src = random_source(spec, make_net) if spec.treatment == "random" else make_net()
                if spec.treatment != "random":  # layers 1..7 only: the source half may have other classes
                    transfer_layers(src, parent, MAX_LAYER)
                sources[source] = src.to(device, memory_format=fmt).eval()
            start = spec.n if source else 0
            members.append(Member(spec, net, make_optimizer(net, recipe, device), start, source))
        if compile and device.type == "cuda":  # pays on the GPU only (see benchmarks/gpu_check.py)
            for net in [m.net for m in members] + list(sources.values()):
                compile_layers(net)
        return cls(members, sources, task, arch, recipe, device, bf16, channels_last, store, checkpoint_every,
                   divergence_loss)

    # ---- data --------------------------------------------------------------------------------------
    def batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stream is not None:
            x, y = self.stream.get(i)
        else:
            epoch, j = divmod(i, self.per_epoch)
            idx = batch_indices(self.data_seed, epoch, len(self.task.train), self.recipe.batch_size, j)
            x = self.task.train.get(idx).to(self.device, non_blocking=True)
            y = self.task.train.labels[idx].to(self.device, non_blocking=True)
        x = augment(x, self.recipe.crop, self.recipe.mirror, stable_seed(self.data_seed, "aug", i))
        return x.contiguous(memory_format=self.memory_format), y

    def prefixes(self, x: torch.Tensor, members) -> dict[str, list[torch.Tensor]]:
        """Outputs of the frozen layers, once per source, for the members that use them."""
        upto: dict[str, int] = {}
        for m in members:
            if m.source:
                upto[m.source] = max(upto.get(m.source, 0), m.start)
        with torch.no_grad(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
            return {s: self.sources[s].features(x, k) for s, k in upto.items()}

    # ---- training ----------------------------------------------------------------------------------
    def step(self, i: int, members) -> None:
        x, y = self.batch(i)
        feats = self.prefixes(x, members)
        for m in members:
            h = feats[m.source][m.start - 1] if m.source else x
            for group in m.optimizer.param_groups:
                group["lr"] = self.recipe.lr * self.lr[i] * group["lr_mult"]
            # On the training device: drawing masks on the CPU would stall a GPU every step.
            gen = torch.Generator(self.device).manual_seed(stable_seed(m.spec.init_seed, "dropout", i))
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
                logits = m.net(h, start=m.start, generator=gen)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
            value = loss.item()
            if not math.isfinite(value) or value > self.divergence_loss:
                m.diverged = True
                m.losses.append((i + 1, value))
                continue
            m.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            m.optimizer.step()
            m.loss_sum += value
            m.loss_count += 1

    @torch.no_grad()
    def evaluate(self, members, chunk: int = 500) -> list[float]:
        for m in members:
            m.net.eval()
        correct = [0] * len(members)
        val = self.task.val
        for images, y in val_chunks(val, chunk, self.device):
            x = augment(images, self.recipe.crop, False, None)
            x = x.contiguous(memory_format=self.memory_format)
            feats = self.prefixes(x, members)
            for k, m in enumerate(members):
                h = feats[m.source][m.start - 1] if m.source else x
                with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
                    correct[k] += (m.net(h, start=m.start).argmax(1) == y).sum().item()
        for m in members:
            m.net.train()
        return [c / len(val) for c in correct]

    def checkpoint(self, i: int, members) -> None:
        if self.store is None:
            return
        for m in members:
            self.store.save_checkpoint(m.spec, _state(m), {"iteration": i, "curve": m.curve, "losses": m.losses,
                                                           "diverged": m.diverged, "loss_sum": m.loss_sum,
                                                           "loss_count": m.loss_count})

    def resume(self) -> dict[int, list[Member]]:
        """Members by the iteration they resume from (0 for a fresh start)."""
        by_start: dict[int, list[Member]] = {}
        for m in self.members:
            found = self.store.load_checkpoint(m.spec) if self.store else None
            start = 0
            if found:
                tensors, meta = found
                _restore(m, tensors, self.device)
                m.curve = [tuple(c) for c in meta["curve"]]
                m.losses = [tuple(c) for c in meta["losses"]]
                m.diverged = meta.get("diverged", False)
                m.loss_sum, m.loss_count = meta.get("loss_sum", 0.0), meta.get("loss_count", 0)
                start = meta["iteration"]
                self.store.append_log(m.spec, f"{time.strftime('%F %T')} resumed from the checkpoint at "
                                              f"iteration {start}")
            by_start.setdefault(start, []).append(m)
        return by_start

    def run(self, progress=None) -> list[dict]:
        """Train every member to the end (or divergence) and return their metrics, in member order."""
        t0 = time.time()
        threads = torch.get_num_threads()
        if self.device.type == "cpu":  # the order of a reduction's partial sums follows the thread count
            torch.set_num_threads(self.recipe.cpu_threads)
        try:
            for start, members in sorted(self.resume().items()):
                self._train(start, members, progress)
        finally:
            torch.set_num_threads(threads)
        seconds = time.time() - t0
        return [self.metrics(m, seconds) for m in self.members]

    def _train(self, start: int, members: list[Member], progress) -> None:
        for m in members:
            m.net.train()
        active = [m for m in members if not m.diverged]
        for i in range(start, self.total):
            if not active:
                break
            self.step(i, active)
            active = [m for m in active if not m.diverged]
            if i + 1 in self.evals:
                for m, acc in zip(active, self.evaluate(active)):
                    m.curve.append((i + 1, acc))
                    m.losses.append((i + 1, m.loss_sum / max(1, m.loss_count)))
                    m.loss_sum, m.loss_count = 0.0, 0
            if self.checkpoint_every and (i + 1) % self.checkpoint_every == 0 and i + 1 < self.total:
                self.checkpoint(i + 1, members)
            if progress:
                progress(i + 1, self.total)

    def metrics(self, m: Member, seconds: float) -> dict:
        chance = 1.0 / self.task.num_classes
        top1 = paper_metric(m.curve, self.recipe.top_k) if m.curve else chance
        return {
            "spec": m.spec.to_dict(),
            "label": m.spec.label,
            "curve": [list(c) for c in m.curve],
            "losses": [list(c) for c in m.losses],
            "top1": chance if m.diverged else top1,
            "final_top1": chance if m.diverged else (m.curve[-1][1] if m.curve else chance),
            "diverged": m.diverged,
            "iterations": self.total,
            "num_classes": self.task.num_classes,
            "num_train": len(self.task.train),
            "num_val": len(self.task.val),
            "train_seconds": seconds,
            "group_size": len(self.members),
            "device": str(self.device),
            "autocast": "bf16" if self.autocast else "none",
            "threads": self.recipe.cpu_threads if self.device.type == "cpu" else torch.get_num_threads(),
            "torch": torch.__version__,
        }
