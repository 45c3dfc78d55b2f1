"""The training loop: a group of networks of one target, trained on the same batches in the same order.

One network alone is a group of one, so the shared sweep and one-at-a-time training run the same code.
Everything random is a function of (seed, iteration): the batch order of an epoch, the crops and mirrors of
a batch, each network's dropout masks. So a group gives each network exactly the numbers it would get
alone, and a run resumed from a checkpoint continues exactly where it stopped (on the CPU).

Frozen networks copied from the same source (a base, or the random control's random network) share one
forward pass through the frozen layers per batch; nothing below a network's first trainable layer is
back-propagated.

A training step never waits for the device: an in-memory training set (that fits) lives on the device, the
batch order of an epoch and the crops and mirrors of a stretch of iterations are drawn on the CPU (from the
same (seed, iteration) streams as always) and copied over once, the losses and the divergence test stay on
the device, and all of it is read back once per evaluation or checkpoint (`read_tallies`). A run that
diverges is therefore noticed at the next evaluation: its curve and losses are what they always were, but the
weights it leaves are those of that later iteration.

The parts, each readable (and testable) alone: `Batches` (batch order, crops and mirrors), `TrainingStep`
(and its CUDA graph, `StepGraph`), `Tally` (the device-side losses and divergence), `Evaluation`,
`Checkpoints` (when, writing, resuming). `Group` builds them and runs the loop (`Group.train`).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from repro.budget import eval_points, iterations, lr_multipliers
from repro.data.base import ImageSet
from repro.loader import BatchStream, batch_indices, epoch_order, val_chunks
from repro.models import blocks, get_model
from repro.profiles import Recipe
from repro.runs import RunSpec, stable_seed
from repro.settings import TrainingSettings
from repro.transfer import build_treatment, prefix_source_id, random_source, transfer_layers

# ImageNet channel statistics; the paper subtracted the mean image, which at these scales is near-constant.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


class Diverged(Exception):
    pass


class Stopped(Exception):
    """A group reached its time limit (`Group.run(stop_at=...)`) or was asked to stop (`request_stop`): every
    member's state is in a checkpoint at `iteration`, from which a later run on the same store continues to the
    same numbers."""

    def __init__(self, iteration: int):
        super().__init__(f"stopped at iteration {iteration} (time limit or stop signal)")
        self.iteration = iteration


_stop_requested = False  # set by SIGTERM (what `kill`, a batch system or a shutdown sends), see stopping_on_sigterm


def request_stop(signum=None, frame=None) -> None:
    """Ask this process's training to stop as at --stop-after's limit: no group starts, the running ones stop
    at their next iteration in a checkpoint. A signal handler."""
    global _stop_requested
    _stop_requested = True


def stop_requested() -> bool:
    return _stop_requested


@contextlib.contextmanager
def stopping_on_sigterm():
    """Within it, SIGTERM asks the training to stop (request_stop), so that what finished is kept, instead of
    ending the process at once; the handler before is restored after. Only the main thread can handle
    signals: elsewhere nothing changes."""
    global _stop_requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop_requested = False
    before = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
        _stop_requested = False


@dataclass
class Task:
    """What a group trains on: one half of one split."""

    train: ImageSet
    val: ImageSet
    num_classes: int


@dataclass
class Member:
    spec: RunSpec
    net: nn.Module
    optimizer: torch.optim.Optimizer | None
    start: int  # layers 1..start are frozen and computed by the shared source; 0 = trained from the input
    source: str | None
    curve: list = field(default_factory=list)  # [(iteration, top1)]
    losses: list = field(default_factory=list)  # [(iteration, mean training loss since the last entry)]
    loss_sum: float = 0.0
    loss_count: int = 0
    diverged: bool = False
    done: bool = False
    tally: Tally | None = None  # the same, on the training device (from the member's first step)
    seconds_before: float = 0.0  # its training time before the checkpoint it resumed from (earlier pieces)


def paper_metric(curve: list, k: int) -> float:
    """The paper's score: the mean of the k highest validation tests."""
    values = sorted((v for _, v in curve), reverse=True)[:k]
    return sum(values) / len(values) if values else float("nan")


def augment(x: torch.Tensor, crop: int, mirror: bool, seed: int | None) -> torch.Tensor:
    """Random crops and mirrors (seed given) or the centre crop (seed None); uint8 in, normalised float out."""
    draws = None if seed is None else draw_crops(x.shape[0], x.shape[-1], crop, mirror, seed)
    return crop_and_normalise(x, crop, draws, MEAN.to(x.device), STD.to(x.device))


def draw_crops(b: int, size: int, crop: int, mirror: bool, seed: int) -> torch.Tensor:
    """The crop offsets (rows, columns) and mirror flags of a batch of b, as [3, b] int64, on the CPU."""
    g = torch.Generator().manual_seed(seed)
    oy = torch.randint(0, size - crop + 1, (b,), generator=g)
    ox = torch.randint(0, size - crop + 1, (b,), generator=g)
    flip = torch.rand(b, generator=g) < 0.5 if mirror else torch.zeros(b, dtype=torch.bool)
    return torch.stack([oy, ox, flip.long()])


def crop_and_normalise(x: torch.Tensor, crop: int, draws: torch.Tensor | None, mean, std) -> torch.Tensor:
    """uint8 images cut at `draws` (from draw_crops, on x's device) or centred (None), as normalised floats."""
    b, _, s, _ = x.shape
    if draws is None:
        o = (s - crop) // 2
        x = x[:, :, o:o + crop, o:o + crop]
    else:
        oy, ox, flip = draws[0], draws[1], draws[2].bool()
        idx = torch.arange(crop, device=x.device)
        rows = oy[:, None] + idx
        cols = ox[:, None] + idx
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        x = x[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        x = x.permute(0, 3, 1, 2)
    x = x.float()
    return (x - mean) / std


def fits_on(device: torch.device, tensor: torch.Tensor) -> bool:
    """Whether a dataset may live on the device: a CPU trivially; a GPU if it takes under a quarter of the
    free memory (the networks and their activations need the rest)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return tensor.numel() * tensor.element_size() < free / 4


def determinism(deterministic: bool) -> None:
    """Same spec, same GPU: same numbers. No cuDNN autotuning (its pick can differ from one process to the
    next), deterministic cuDNN/cuBLAS algorithms (cuBLAS needs its workspace fixed before its first use), and
    PyTorch's deterministic implementations. `warn_only`: an op without one warns rather than stops a long
    run; benchmarks/gpu_check.py checks on the GPU that two trainings agree bit for bit. Nothing changes on
    the CPU, whose kernels are deterministic already."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    # Not also NaN-filling every new tensor (that mode's default): it costs time on every allocation and only
    # matters to an op that reads memory it did not write, which no layer here does.
    torch.utils.deterministic.fill_uninitialized_memory = False


def param_groups(net: nn.Module, recipe: Recipe) -> list[dict]:
    """Conv/linear weights get weight decay; their biases get none and `bias_lr_mult` x the rate (as in the
    paper); batch-norm scales and shifts get neither."""
    norm = {id(p) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()}
    groups = {"weight": [], "bias": [], "norm": []}
    for name, p in net.named_parameters():
        if p.requires_grad:
            kind = "norm" if id(p) in norm else name.rsplit(".", 1)[1]
            groups[kind].append(p)
    return [
        {"params": groups["weight"], "weight_decay": recipe.weight_decay, "lr_mult": 1.0},
        {"params": groups["bias"], "weight_decay": 0.0, "lr_mult": recipe.bias_lr_mult},
        {"params": groups["norm"], "weight_decay": 0.0, "lr_mult": 1.0},
    ]


def compile_layers(net: nn.Module) -> nn.Module:
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


def make_optimizer(net: nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    fused = device.type == "cuda"
    return torch.optim.SGD(param_groups(net, recipe), lr=recipe.lr, momentum=recipe.momentum,
                           **({"fused": True} if fused else {"foreach": True}))


def has_dropout(net: nn.Module) -> bool:
    return any(layer.dropout > 0 for layer in net.layers)


def autocast_context(device: torch.device, precision: str, capturing: bool = False):
    """The autocast context of every forward pass, from the precision ('bf16' or 'fp32'): bf16 autocast, or
    the tensors' own dtype. Under a CUDA graph capture autocast must not cache its casts."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16", cache_enabled=not capturing)


def frozen_features(sources: dict[str, nn.Module], x: torch.Tensor, members, precision: str,
                    capturing: bool = False) -> dict[str, list[torch.Tensor]]:
    """Outputs of the frozen layers, once per source, as deep as its deepest member needs."""
    upto: dict[str, int] = {}
    for m in members:
        if m.source:
            upto[m.source] = max(upto.get(m.source, 0), m.start)
    with torch.no_grad(), autocast_context(x.device, precision, capturing):
        return {s: sources[s].features(x, k) for s, k in upto.items()}


# ---- batches -------------------------------------------------------------------------------------------
class Batches:
    """The augmented training batches of a group, by iteration: the batch order of the epoch and the crops and
    mirrors of the iteration (each from its own (seed, iteration) stream), gathered and cut on the device
    without waiting for it. An in-memory training set that fits lives on the device; a file-backed one
    (ILSVRC-2012) is decoded ahead in worker processes (`stream`), in the same order."""

    DRAW_AHEAD = 64  # iterations of crops and mirrors drawn and copied to the device at once

    def __init__(self, train: ImageSet, recipe: Recipe, data_seed: int, per_epoch: int, total: int,
                 device: torch.device, memory_format=torch.contiguous_format):
        self.recipe, self.data_seed, self.per_epoch, self.total = recipe, data_seed, per_epoch, total
        self.device, self.memory_format = device, memory_format
        self.mean, self.std = MEAN.to(device), STD.to(device)
        self.stream = None if train.images is not None else BatchStream(
            train, data_seed, per_epoch, recipe.batch_size, total, device)
        self.images = self.labels = None  # the training set where batches are gathered (the device if it fits)
        if self.stream is None:
            here = device if fits_on(device, train.images) else torch.device("cpu")
            self.images, self.labels = train.images.to(here), train.labels.to(here)
        self.order = (None, None)  # (epoch, its batch order on the images' device)
        self.draws = (0, 0, None)  # (first, end, [end - first, 3, B] crops and mirrors on the device)

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The augmented batch of iteration i: normalised images and labels, on the device."""
        b = self.recipe.batch_size
        if self.stream is not None:
            x, y = self.stream.get(i)
        else:
            epoch, j = divmod(i, self.per_epoch)
            if self.order[0] != epoch:
                self.order = (epoch, epoch_order(self.data_seed, epoch, len(self.images)).to(self.images.device))
            idx = self.order[1][j * b:(j + 1) * b]
            x = self.images[idx].to(self.device, non_blocking=True)
            y = self.labels[idx].to(self.device, non_blocking=True)
        x = crop_and_normalise(x, self.recipe.crop, self.crops(i, x.shape[0], x.shape[-1]), self.mean, self.std)
        return x.contiguous(memory_format=self.memory_format), y

    def crops(self, i: int, b: int, size: int) -> torch.Tensor:
        """Iteration i's crops and mirrors (its own seed, as `augment` draws them), drawn DRAW_AHEAD
        iterations at a time and copied to the device in one transfer."""
        first, end, block = self.draws
        if not first <= i < end or block.shape[-1] != b:
            end = min(self.total, i + self.DRAW_AHEAD)
            block = torch.stack([draw_crops(b, size, self.recipe.crop, self.recipe.mirror,
                                            stable_seed(self.data_seed, "aug", k)) for k in range(i, end)])
            if self.device.type == "cuda":
                block = block.pin_memory()
            self.draws = first, end, block = i, end, block.to(self.device, non_blocking=True)
        return block[i - first]


# ---- device-side tallies -------------------------------------------------------------------------------
class Tally:
    """A member's training loss and divergence, kept on the training device so that a step never waits: the
    sum and count of finite losses since the last evaluation, whether it diverged (a non-finite loss, or one
    above the limit) and the iteration and loss at which it did. `read_tallies` reads them back."""

    def __init__(self, member: Member, device: torch.device):
        self.sum = torch.tensor(member.loss_sum, dtype=torch.float64, device=device)
        self.count = torch.tensor(member.loss_count, device=device)
        self.diverged = torch.tensor(member.diverged, device=device)
        self.at = torch.zeros((), dtype=torch.float64, device=device)
        self.loss = torch.zeros((), dtype=torch.float64, device=device)

    def add(self, loss: torch.Tensor, iteration: torch.Tensor, limit: float) -> None:
        """Add a finite loss to the sum, or mark the member diverged at `iteration` (a device tensor)."""
        value = loss.double()
        bad = ~torch.isfinite(value) | (value > limit)
        first = bad & ~self.diverged
        good = ~bad & ~self.diverged
        self.sum.add_(torch.where(good, value, 0.0))
        self.count.add_(good)
        self.at.copy_(torch.where(first, iteration, self.at))
        self.loss.copy_(torch.where(first, value, self.loss))
        self.diverged.logical_or_(bad)


def read_tallies(members) -> None:
    """Read every member's device tally in one transfer: losses since the last read, and divergence."""
    live = [m for m in members if m.tally is not None]
    if not live:
        return
    rows = torch.stack([torch.stack([t.sum, t.count.double(), t.diverged.double(), t.at, t.loss])
                        for t in (m.tally for m in live)]).tolist()
    for m, (total, count, diverged, at, loss) in zip(live, rows):
        m.loss_sum, m.loss_count = total, int(count)
        if diverged and not m.diverged:
            m.diverged = True
            m.losses.append((int(at), loss))


def reset_losses(m: Member) -> None:
    m.loss_sum, m.loss_count = 0.0, 0
    if m.tally is not None:
        m.tally.sum.zero_()
        m.tally.count.zero_()


# ---- the step ------------------------------------------------------------------------------------------
class TrainingStep:
    """One training step of a group's members on one batch: the iteration's learning rate, the frozen prefixes
    once per source, each member's forward, backward and SGD, and its loss tallied on the device. With
    `cuda_graphs` (CUDA only) the step is captured once and replayed (`StepGraph`)."""

    def __init__(self, members, sources: dict[str, nn.Module], recipe: Recipe, total: int, device: torch.device,
                 precision: str, divergence_loss: float, cuda_graphs: bool = False):
        self.sources, self.recipe, self.device = sources, recipe, device
        self.precision, self.divergence_loss = precision, divergence_loss
        self.lr = lr_multipliers(recipe, total)
        # The iteration a divergence is dated to, as a device tensor the step reads (a captured step cannot
        # bake a Python number in). On CUDA the learning rates too: one tensor per lr multiplier, shared by the
        # members' parameter groups and filled before every step, so eager and replayed steps do the same
        # arithmetic (fused SGD reads a tensor lr in float32, a Python lr in double).
        self.iteration = torch.zeros((), dtype=torch.float64, device=device)
        self.lr_tensors: dict[float, torch.Tensor] = {}
        if device.type == "cuda":
            for m in members:
                for g in m.optimizer.param_groups if m.optimizer else []:
                    g["lr"] = self.lr_tensors.setdefault(g["lr_mult"], torch.zeros((), device=device))
        self.graph = StepGraph() if cuda_graphs and device.type == "cuda" else None

    def __call__(self, i: int, x: torch.Tensor, y: torch.Tensor, members) -> None:
        if self.lr_tensors:
            for mult, lr in self.lr_tensors.items():
                lr.fill_(self.recipe.lr * self.lr[i] * mult)
        else:
            for m in members:
                for group in m.optimizer.param_groups:
                    group["lr"] = self.recipe.lr * self.lr[i] * group["lr_mult"]
        self.iteration.fill_(i + 1)
        if self.graph is not None and self.graph.fits(members):
            self.graph.step(self, i, x, y, members)
        else:
            self.body(x, y, members, i)

    def body(self, x: torch.Tensor, y: torch.Tensor, members, i: int | None, capturing: bool = False) -> None:
        """Forward, backward and SGD of every member on one batch (what a CUDA graph captures). `i` seeds the
        dropout masks (None only where no member has dropout)."""
        feats = frozen_features(self.sources, x, members, self.precision, capturing)
        for m in members:
            h = feats[m.source][m.start - 1] if m.source else x
            # On the training device: drawing masks on the CPU would stall a GPU every step.
            gen = None if not has_dropout(m.net) else \
                torch.Generator(self.device).manual_seed(stable_seed(m.spec.init_seed, "dropout", i))
            with autocast_context(self.device, self.precision, capturing):
                logits = m.net(h, start=m.start, generator=gen)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
            if m.tally is None:
                m.tally = Tally(m, self.device)
            m.tally.add(loss.detach(), self.iteration, self.divergence_loss)
            # A captured step keeps its gradient tensors (zeroed, then accumulated into: the same values).
            m.optimizer.zero_grad(set_to_none=self.graph is None)
            loss.backward()
            m.optimizer.step()


class StepGraph:
    """A group's training step captured once as a CUDA graph and replayed (`Profile.cuda_graphs`, CUDA only):
    for a small network the GPU otherwise waits on Python launching its kernels one by one (an H200 ran the
    `cpu` network's bare step in 1.11 ms as a graph, 5.93 ms eager; benchmarks/gpu_check_h200.json). The batch is
    copied into static buffers before each replay; the lr and the iteration are device tensors the eager step
    reads too. A member set's first WARMUP steps run eagerly on a side stream (momentum buffers and library
    handles come to exist), then the step is captured; a new member set (a run diverged) is captured anew, and
    a batch of another shape runs eagerly. Members with dropout are not captured (a mask generator is seeded
    per step on the host)."""

    WARMUP = 3

    def __init__(self):
        self.key, self.warm, self.graph, self.x, self.y = None, 0, None, None, None

    @staticmethod
    def fits(members) -> bool:
        return not any(has_dropout(m.net) for m in members)

    def step(self, training_step: TrainingStep, i: int, x: torch.Tensor, y: torch.Tensor, members) -> None:
        key = tuple(id(m) for m in members)
        if key != self.key:
            self.key, self.warm, self.graph = key, 0, None
        if self.graph is None and self.warm < self.WARMUP:
            current = torch.cuda.current_stream(training_step.device)
            side = torch.cuda.Stream(training_step.device)
            side.wait_stream(current)
            with torch.cuda.stream(side):
                training_step.body(x, y, members, i)
            current.wait_stream(side)
            self.warm += 1
            return
        if self.graph is None:
            self.x, self.y = x.clone(), y.clone()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                training_step.body(self.x, self.y, members, None, capturing=True)
        if x.shape != self.x.shape:
            training_step.body(x, y, members, i)
            return
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()


# ---- evaluation ----------------------------------------------------------------------------------------
class Evaluation:
    """Top-1 accuracy of members on the validation set (centre crops), their frozen prefixes computed once per
    source. An in-memory set that fits is copied to the device once."""

    def __init__(self, val: ImageSet, crop: int, sources: dict[str, nn.Module], device: torch.device, precision: str,
                 memory_format=torch.contiguous_format):
        self.val, self.crop, self.sources, self.device = val, crop, sources, device
        self.precision, self.memory_format = precision, memory_format
        self.mean, self.std = MEAN.to(device), STD.to(device)
        self.on_device = None  # (uint8 images, labels) on the device, once, where the set is in memory and fits

    def batches(self, chunk: int):
        """The validation set in chunks on the device."""
        if self.val.images is None or not fits_on(self.device, self.val.images):
            yield from val_chunks(self.val, chunk, self.device)
            return
        if self.on_device is None:
            self.on_device = (self.val.images.to(self.device), self.val.labels.to(self.device))
        images, labels = self.on_device
        for lo in range(0, len(self.val), chunk):
            yield images[lo:lo + chunk], labels[lo:lo + chunk]

    @torch.no_grad()
    def __call__(self, members, chunk: int = 500) -> list[float]:
        for m in members:
            m.net.eval()
        correct = torch.zeros(len(members), dtype=torch.int64, device=self.device)
        for images, y in self.batches(chunk):
            x = crop_and_normalise(images, self.crop, None, self.mean, self.std)
            x = x.contiguous(memory_format=self.memory_format)
            feats = frozen_features(self.sources, x, members, self.precision)
            for k, m in enumerate(members):
                h = feats[m.source][m.start - 1] if m.source else x
                with autocast_context(self.device, self.precision):
                    correct[k] += (m.net(h, start=m.start).argmax(1) == y).sum()
        for m in members:
            m.net.train()
        return [c / len(self.val) for c in correct.tolist()]  # the one read of an evaluation


# ---- checkpoints and resume ----------------------------------------------------------------------------
def member_state(member: Member) -> dict[str, torch.Tensor]:
    """A member's weights and momentum buffers, as a checkpoint holds them."""
    tensors = {f"net.{k}": v for k, v in member.net.state_dict().items()}
    if member.optimizer is not None:
        names = {p: n for n, p in member.net.named_parameters()}
        for group in member.optimizer.param_groups:
            for p in group["params"]:
                buf = member.optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    tensors[f"momentum.{names[p]}"] = buf
    return tensors


def restore_member(member: Member, tensors: dict[str, torch.Tensor], device) -> None:
    member.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    params = dict(member.net.named_parameters())
    for k, v in tensors.items():
        if k.startswith("momentum."):
            member.optimizer.state[params[k[9:]]]["momentum_buffer"] = v.to(device)


class CheckpointWriter:
    """Checkpoints written in a background thread, one at a time, while training goes on. `write` takes a
    snapshot (the tensors copied to the CPU, the lists copied) before it returns, so what is written is the
    state at the checkpoint's iteration; the store's own protocol (a staged file, then checkpoint.json as the
    commit point) keeps a process killed mid-write resumable. `wait` finishes the write in flight and raises
    its error, if any."""

    def __init__(self, store):
        self.store, self.thread, self.error = store, None, None

    def write(self, items: list[tuple[RunSpec, dict[str, torch.Tensor], dict]]) -> None:
        self.wait()
        snapshot = [(spec, {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}, meta)
                    for spec, tensors, meta in items]
        self.thread = threading.Thread(target=self._write, args=(snapshot,), name="checkpoint", daemon=True)
        self.thread.start()

    def _write(self, snapshot) -> None:
        try:
            for spec, tensors, meta in snapshot:
                self.store.save_checkpoint(spec, tensors, meta)
        except BaseException as error:  # noqa: BLE001 - raised in the training thread by `wait`
            self.error = error

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error


NOTE_SECONDS = 30  # how often a training group notes how far it is (Checkpoints.note)


class Checkpoints:
    """A group's checkpoints in the store (none without one): when one is due, writing it in the background,
    and resuming each member from its last."""

    def __init__(self, store, total: int, every: int = 0, minutes: float = 0.0):
        self.store, self.total, self.every, self.seconds = store, total, every, 60 * minutes
        self.writer = CheckpointWriter(store) if store is not None else None
        self.last, self.started = time.monotonic(), time.time()  # started: this piece of training (resume)
        self.noted = -float("inf")  # when note() last wrote

    def note(self, i: int, members) -> None:
        """After iteration i - 1: every NOTE_SECONDS, how far the members are (Store.write_progress), so that
        the status line is not a checkpoint's interval behind."""
        if self.store is not None and time.monotonic() - self.noted >= NOTE_SECONDS:
            for m in members:
                self.store.write_progress(m.spec, i, self.total)
            self.noted = time.monotonic()

    def due(self, i: int) -> bool:
        """After iteration i - 1: every `every` iterations, or `minutes` after the last checkpoint."""
        if i >= self.total:
            return False
        by_count = self.every and i % self.every == 0
        by_time = self.seconds and time.monotonic() - self.last >= self.seconds
        return bool(by_count or by_time)

    def save(self, i: int, members) -> None:
        """Start writing every member's state at iteration i (in the background, see CheckpointWriter)."""
        if self.store is None:
            return
        piece = time.time() - self.started
        self.writer.write([(m.spec, member_state(m), {"iteration": i, "total": self.total, "curve": list(m.curve),
                                                      "losses": list(m.losses), "diverged": m.diverged,
                                                      "loss_sum": m.loss_sum, "loss_count": m.loss_count,
                                                      "train_seconds": m.seconds_before + piece})
                           for m in members])
        self.last = time.monotonic()

    def resume(self, members, device) -> dict[int, list[Member]]:
        """Members by the iteration they resume from (0 for a fresh start)."""
        self.last, self.started = time.monotonic(), time.time()
        by_start: dict[int, list[Member]] = {}
        for m in members:
            found = self.store.load_checkpoint(m.spec) if self.store else None
            start = 0
            if found:
                tensors, meta = found
                restore_member(m, tensors, device)
                m.curve = [tuple(c) for c in meta["curve"]]
                m.losses = [tuple(c) for c in meta["losses"]]
                m.diverged = meta.get("diverged", False)
                m.loss_sum, m.loss_count = meta.get("loss_sum", 0.0), meta.get("loss_count", 0)
                m.seconds_before = meta.get("train_seconds", 0.0)
                start = meta["iteration"]
                self.store.append_log(m.spec, f"{time.strftime('%F %T')} resumed from the checkpoint at "
                                              f"iteration {start}")
            by_start.setdefault(start, []).append(m)
        return by_start

    def wait(self) -> None:
        """Finish the write in flight (raising its error, if any)."""
        if self.writer is not None:
            self.writer.wait()


# ---- the group -----------------------------------------------------------------------------------------
class Group:
    """Networks of one target trained together. Build with `Group.build`, then `run`."""

    def __init__(self, members, sources, task: Task, settings: TrainingSettings, device: torch.device, store=None,
                 checkpoint_every: int = 0, checkpoint_minutes: float = 0.0):
        self.members, self.sources, self.task = members, sources, task
        self.settings, self.recipe, self.device = settings, settings.recipe, device
        self.precision = settings.numerics.precision  # 'bf16' or 'fp32'
        memory_format = torch.channels_last if settings.numerics.channels_last else torch.contiguous_format
        self.per_epoch, self.total = iterations(self.recipe, len(task.train))
        self.evals = eval_points(self.recipe, self.total)
        data_seed = members[0].spec.data_seed
        if any(m.spec.data_seed != data_seed for m in members):
            raise ValueError("a group must share one target and replicate (one data seed)")
        self.batches = Batches(task.train, self.recipe, data_seed, self.per_epoch, self.total, device,
                               memory_format)
        self.training_step = TrainingStep(members, sources, self.recipe, self.total, device, self.precision,
                                          settings.numerics.divergence_loss, settings.cuda_graphs)
        self.evaluate = Evaluation(task.val, self.recipe.crop, sources, device, self.precision, memory_format)
        self.checkpoints = Checkpoints(store, self.total, checkpoint_every, checkpoint_minutes)

    @classmethod
    def build(cls, specs: list[RunSpec], task: Task, parents: dict[str, dict], settings: TrainingSettings, *,
              device=None, store=None, checkpoint_every: int = 0, checkpoint_minutes: float = 0.0) -> "Group":
        """The group of `specs` trained by `settings` (`parents`: each transfer's base weights, by key). The
        keywords are where and how the work is done, not what is learned: `device` (default: the settings'
        device type; another type is refused), the store that checkpoints go to, and when."""
        device = torch.device(settings.numerics.device if device is None else device)
        if device.type != settings.numerics.device:
            raise ValueError(f"settings for {settings.numerics.device} cannot train on {device}")
        determinism(settings.deterministic)
        fmt = torch.channels_last if settings.numerics.channels_last else torch.contiguous_format

        def make_net():
            return get_model(settings.arch, task.num_classes, settings.recipe.crop)

        members, sources = [], {}
        for spec in specs:
            parent = parents.get(spec.parent.key) if spec.parent else None
            net = build_treatment(spec, make_net, parent).to(device, memory_format=fmt)
            source = prefix_source_id(spec)
            if source and source not in sources:
                src = random_source(spec, make_net) if spec.treatment == "random" else make_net()
                if spec.treatment != "random":  # the blocks only: the source half may have other classes
                    transfer_layers(src, parent, blocks(settings.arch))
                sources[source] = src.to(device, memory_format=fmt).eval()
            start = spec.n if source else 0
            members.append(Member(spec, net, make_optimizer(net, settings.recipe, device), start, source))
        if settings.numerics.compile and device.type == "cuda":  # pays on the GPU only (benchmarks/gpu_check.py)
            for net in [m.net for m in members] + list(sources.values()):
                compile_layers(net)
        return cls(members, sources, task, settings, device, store, checkpoint_every, checkpoint_minutes)

    @property
    def stream(self):
        """The reader of a file-backed training set (None for one in memory)."""
        return self.batches.stream

    @property
    def graph(self) -> StepGraph | None:
        return self.training_step.graph

    def step(self, i: int, members) -> None:
        x, y = self.batches.get(i)
        self.training_step(i, x, y, members)

    def run(self, progress=None, stop_at: float | None = None) -> list[dict]:
        """Train every member to the end (or divergence) and return their metrics, in member order. With
        `stop_at` (a time.time()), stop when it is reached: checkpoint every member and raise Stopped."""
        t0 = time.time()
        threads = torch.get_num_threads()
        if self.device.type == "cpu":  # the order of a reduction's partial sums follows the thread count
            torch.set_num_threads(self.recipe.cpu_threads)
        try:
            # Members resumed from different iterations: the least advanced train alone until the next ones'
            # iteration, then together (one frozen-prefix pass for all; each member's numbers are its own).
            cohorts = sorted(self.checkpoints.resume(self.members, self.device).items())
            members: list[Member] = []
            for k, (start, joining) in enumerate(cohorts):
                members += joining
                end = cohorts[k + 1][0] if k + 1 < len(cohorts) else self.total
                self.train(start, members, progress, stop_at, end=end)
        finally:  # a checkpoint in flight is finished before the results (or an error) leave
            self.checkpoints.wait()
            torch.set_num_threads(threads)
        seconds = time.time() - t0
        return [self.metrics(m, seconds) for m in self.members]

    def train(self, start: int, members: list[Member], progress, stop_at: float | None = None,
              end: int | None = None) -> None:
        """Iterations start..end (default: total) of `members`: evaluations and checkpoints on their schedule,
        and a checkpoint and Stopped when `stop_at` is reached."""
        for m in members:
            m.net.train()
        active = [m for m in members if not m.diverged]
        evals = set(self.evals)
        for i in range(start, self.total if end is None else end):
            if not active:
                break
            self.step(i, active)
            due = self.checkpoints.due(i + 1)
            if i + 1 in evals or due:
                read_tallies(active)
                active = [m for m in active if not m.diverged]
            if i + 1 in evals:
                for m, acc in zip(active, self.evaluate(active)):
                    m.curve.append((i + 1, acc))
                    m.losses.append((i + 1, m.loss_sum / max(1, m.loss_count)))
                    reset_losses(m)
            if due:
                self.checkpoints.save(i + 1, members)
            self.checkpoints.note(i + 1, members)
            if progress:
                progress(i + 1, self.total)
            if i + 1 < self.total and (_stop_requested or (stop_at is not None and time.time() >= stop_at)):
                if not due:
                    read_tallies(active)
                    self.checkpoints.save(i + 1, members)
                raise Stopped(i + 1)
        read_tallies(active)

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
            "train_seconds": m.seconds_before + seconds,  # every piece it was trained in
            "group_size": len(self.members),
            "device": str(self.device),
            "autocast": "bf16" if self.precision == "bf16" else "none",
            "threads": self.recipe.cpu_threads if self.device.type == "cpu" else torch.get_num_threads(),
            "torch": torch.__version__,
        }
