"""The numerics a network is trained with on this machine: the CPU's instruction set, whether it does bf16 in
hardware, and the precision a profile trains in here (which goes into the run key, repro.runs).

Policy: fp32 on the CPU by default (every profile's `recipe.cpu_bf16` is off), so a run key means one
computation on every CPU (other CPUs give other rounding, not other arithmetic), and no CPU pays for bf16 it
only emulates (oneDNN emulates it without AVX512-BF16 or AMX: 10.8x slower than fp32 on an AVX2 path). bf16 on
the CPU is there on request (`--set recipe.cpu_bf16=true`), used only where the kernels do it natively, else
fp32 with one warning. On CUDA the profile's `bf16` decides (autocast).
"""
from __future__ import annotations

import functools
import os
import platform
import warnings
from pathlib import Path

# oneDNN's ISA levels (ONEDNN_MAX_CPU_ISA) from which it computes bf16 in hardware (AVX512-BF16, AMX).
ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX",
                    "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT")


def usable_cores() -> int:
    """The cores this process may run on: a container's, a Slurm job's or taskset's share, not the host's count
    (os.cpu_count() says 64 in a 2-core job of a 64-core node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=None)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ('model name', 'vendor_id', 'cpu family', ...); {} where
    there is none."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


# What decides which kernels run, beyond the CPU: the instruction-set flags the kernels dispatch on, and the
# variables that limit them (oneDNN, ATen, MKL).
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")
ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                 "MKL_CBWR", "ONEDNN_DEFAULT_FPMATH_MODE")


def arithmetic() -> dict:
    """What identifies this machine's CPU arithmetic: the CPU (vendor, family, model, name), the instruction
    sets its kernels may use, the variables that limit them, and torch's version. Two machines that agree on
    all of it run the same kernels; the model name alone does not tell CPU generations apart in a VM ('AMD
    EPYC' is a Zen 1 and a Zen 4 alike)."""
    import torch

    info = _cpuinfo()
    return {"cpu_vendor": info.get("vendor_id") or platform.machine(), "cpu_family": info.get("cpu family"),
            "cpu_model_number": info.get("model"), "cpu_model": cpu_model(),
            "isa_flags": sorted(cpu_flags() & set(ISA_FLAGS)), "aten_capability": cpu_capability(),
            "variables": {v: os.environ[v] for v in ISA_VARIABLES if v in os.environ},
            "torch": torch.__version__}


def cpu_capability() -> str:
    """The instruction set ATen's CPU kernels use here ('AVX512', 'AVX2', 'DEFAULT', ...): what the CPU has,
    limited by ATEN_CPU_CAPABILITY."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def native_bf16() -> tuple[bool, str]:
    """(whether the CPU kernels compute bf16 in hardware here, why). It follows what the kernels may use, not
    only the CPU's flags: ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 take it away on a CPU that has it."""
    flags = cpu_flags()
    hardware = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if not hardware:
        return False, f"the CPU ({cpu_model()}) has neither AVX512-BF16 nor AMX-BF16"
    capability = cpu_capability()
    if capability != "AVX512":
        return False, f"ATen's CPU kernels use {capability} here (ATEN_CPU_CAPABILITY), not AVX512"
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    if onednn not in ONEDNN_BF16_ISAS:
        return False, f"oneDNN is limited to {onednn} (ONEDNN_MAX_CPU_ISA), below AVX512_CORE_BF16"
    return True, f"{' and '.join(hardware)} with {capability} kernels"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_device(profile) -> str:
    """Where the profile's networks train: its `device` ('cpu', 'cuda'), or this machine's default (a GPU when
    one is visible)."""
    return profile.device or default_device()


def device_type(device) -> str:
    import torch

    return torch.device(device).type


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def precision_for(profile, device) -> str:
    """'bf16' or 'fp32': what the profile's networks compute in on `device` on this machine. The one place the
    precision is decided: into the run key (repro.settings), and for a key planned before it held one."""
    kind = device_type(device)
    if kind == "cuda":
        return "bf16" if profile.bf16 else "fp32"
    if kind != "cpu" or not profile.recipe.cpu_bf16:
        return "fp32"
    native, why = native_bf16()
    if not native:
        _warn_once(f"recipe.cpu_bf16=true asks for bf16 on the CPU, but {why}: bf16 would be emulated (about 10x "
                   f"slower than fp32), so the networks train in fp32 (and their run keys say so)")
        return "fp32"
    return "bf16"


def cpu_summary() -> dict:
    """What a report says about this machine's CPU arithmetic."""
    native, why = native_bf16()
    info = _cpuinfo()
    family = f"family {info['cpu family']} model {info.get('model')}" if info.get("cpu family") else None
    return {"cpu_model": cpu_model(), "cpu_family": family, "cpu_capability": cpu_capability(), "native_bf16": native,
            "native_bf16_why": why, "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}
