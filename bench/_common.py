"""Shared helpers of the benchmarks: machine description, device sync, peak-memory scopes, JSON output.

Why a peak-memory scope of its own: on CPU, `ru_maxrss` only ever grows, so a second measurement in the
same process would inherit the first one's peak. On Linux the high-water mark can be reset by writing
`5` to `/proc/self/clear_refs`; freed heap pages are first handed back with glibc's `malloc_trim`, so
that memory freed by a previous measurement is not silently reused and under-counted.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

_MB = 2**20


def cpu_model_name() -> str:
    """`lscpu`'s model name (falls back to /proc/cpuinfo, then `platform.processor()`)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device) -> dict[str, Any]:
    """What a reader needs to compare figures: CPU/GPU model, cores, threads, library versions, load."""
    import transformers

    info: dict[str, Any] = {
        "cpu": cpu_model_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    try:
        info["load_average_1m"] = round(os.getloadavg()[0], 2)  # the cores may be shared with other work
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def describe_device(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({cpu_model_name()})"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def resolve_device(name: str) -> torch.device:
    """`cpu` or `cuda[:N]`; a clear error when CUDA is asked for and absent."""
    device = torch.device(name)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was given but torch.cuda.is_available() is False on this machine")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings measure the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _release_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory above a baseline taken at `start()`, in MiB; `checkpoint()` resets the peak, keeping the baseline.

    GPU: `torch.cuda.max_memory_allocated` (tensors only, the allocator's cache excluded). CPU: the peak
    resident set size (VmHWM) minus the resident size at `start()`: weights, gradients, optimizer state and
    activations, plus whatever the allocator keeps. Where VmHWM cannot be reset, the process-lifetime
    `ru_maxrss` is used and `method` says so (an upper bound).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline = 0.0
        self.method = ""

    def start(self) -> None:
        _release_freed_memory()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device) / _MB
            self.method = "torch.cuda.max_memory_allocated minus allocated at start"
        else:
            self.baseline = (_proc_status_kb("VmRSS") or 0) / 1024
            self.checkpoint()

    def checkpoint(self) -> None:
        """Start a new peak window (memory still held counts; the baseline stays)."""
        _release_freed_memory()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif _reset_rss_peak() and _proc_status_kb("VmHWM") is not None:
            self.method = "VmHWM (reset via /proc/self/clear_refs) minus VmRSS at start"
        else:
            self.method = "ru_maxrss over the process lifetime minus VmRSS at start (upper bound)"

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            synchronize(self.device)
            return round(torch.cuda.max_memory_allocated(self.device) / _MB - self.baseline, 1)
        if self.method.startswith("VmHWM"):
            peak = (_proc_status_kb("VmHWM") or 0) / 1024
        else:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return round(max(peak - self.baseline, 0.0), 1)


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return out


__all__ = [
    "PeakMemory",
    "cpu_model_name",
    "describe_device",
    "machine_info",
    "now_iso",
    "resolve_device",
    "synchronize",
    "write_json",
]
