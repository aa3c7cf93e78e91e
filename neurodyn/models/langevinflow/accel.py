"""Speed options of LangevinFlow that leave the arithmetic unchanged (or change only its precision).

- :func:`native_bf16`: whether a device multiplies bfloat16 matrices natively (CUDA with bf16 support;
  x86 CPUs with ``avx512_bf16`` or AMX), which is where ``decoder_precision='auto'`` picks bf16.
- :class:`CompiledOrEager`: ``torch.compile`` of a module with a fallback to eager execution when
  compilation fails (no C++ compiler, an unsupported platform or operator).
- :class:`GraphedRollout`: the Langevin recurrence captured as a CUDA graph (one replay instead of ~10
  kernel launches per step), with autograd through ``torch.cuda.make_graphed_callables`` in training.
- :func:`recomputed`: a function whose activations are recomputed in backward instead of stored, with
  the same random draws (memory options ``checkpoint_decoder`` and ``train_chunks``).
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["native_bf16", "cpu_flags", "CompiledOrEager", "GraphedRollout", "recomputed"]


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device | str) -> bool:
    """True where bfloat16 matrix products run on native instructions.

    CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and newer). CPU: the ``avx512_bf16`` or
    ``amx_bf16`` flag (oneDNN then multiplies bf16 at 2-4x the fp32 rate; without them bf16 is emulated
    and slower than fp32). Other devices: False.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return False


class CompiledOrEager:
    """Call ``torch.compile(module)``; on any compilation error, warn once and call ``module`` eagerly.

    Not an ``nn.Module`` on purpose: the owner's ``state_dict`` keeps the module's own keys only.

    Parameters
    ----------
    module
        The module to compile (its parameters are shared, not copied).
    compile_kwargs
        Passed to ``torch.compile`` (e.g. ``mode``, ``dynamic``).
    """

    def __init__(self, module: nn.Module, **compile_kwargs):
        self.module = module
        self.compile_kwargs = compile_kwargs
        self._compiled: Callable | None = None
        self.error: str | None = None

    @property
    def active(self) -> bool:
        """False once compilation failed and calls run eagerly."""
        return self.error is None

    def __call__(self, *args, **kwargs):
        if self.error is None:
            try:
                if self._compiled is None:
                    self._compiled = torch.compile(self.module, **self.compile_kwargs)
                return self._compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
                self.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                warnings.warn(f"torch.compile failed, running eagerly instead ({self.error})", RuntimeWarning,
                              stacklevel=2)
        return self.module(*args, **kwargs)

    def __getstate__(self):  # compiled code is not picklable: rebuild it after unpickling
        return {**self.__dict__, "_compiled": None}

    def __deepcopy__(self, memo):
        return CompiledOrEager(copy.deepcopy(self.module, memo), **self.compile_kwargs)


class GraphedRollout:
    """A rollout function ``fn(z0, v0, matrix[, noise]) -> tuple of tensors`` replayed as a CUDA graph.

    One graph per (shapes, dtype, device, noise present, autograd needed). With autograd (training)
    the forward and the backward are captured by ``torch.cuda.make_graphed_callables``; without it
    (evaluation under ``no_grad``) the forward alone. Outputs are copied out of the graph's static
    buffers, so the tensors a caller keeps are never overwritten by the next replay.

    Restriction (that of ``make_graphed_callables``): between a forward and its backward, do not run
    another forward with the same shapes through the same instance (the backward graph reads the
    activations the last replay left behind). A training step (forward, loss, backward) satisfies it.

    Parameters
    ----------
    fn
        The eager rollout; must be a pure function of its tensor arguments with static shapes and no
        host synchronisation.
    """

    def __init__(self, fn: Callable[..., tuple[Tensor, ...]]):
        self.fn = fn
        self._graphs: dict[tuple, Callable] = {}

    def __call__(self, *args: Tensor) -> tuple[Tensor, ...]:
        if not all(a.is_cuda for a in args):
            raise ValueError("GraphedRollout needs CUDA tensors")
        grad = torch.is_grad_enabled() and any(a.requires_grad for a in args)
        key = (grad, *((tuple(a.shape), a.dtype, a.device, a.requires_grad) for a in args))
        run = self._graphs.get(key)
        if run is None:
            run = self._graphs[key] = self._capture(args, grad)
        return run(*args)

    def __len__(self) -> int:
        return len(self._graphs)

    def __getstate__(self):  # CUDA graphs are neither picklable nor copyable: capture again
        return {**self.__dict__, "_graphs": {}}

    def __deepcopy__(self, memo):
        return GraphedRollout(self.fn)

    def _capture(self, args: tuple[Tensor, ...], grad: bool) -> Callable:
        samples = tuple(a.detach().clone().requires_grad_(a.requires_grad and grad) for a in args)
        if grad:
            graphed = torch.cuda.make_graphed_callables(self.fn, samples, allow_unused_input=True)

            def run_grad(*inputs):
                return tuple(o.clone() for o in graphed(*inputs))

            return run_grad
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream, as CUDA graph capture requires
                self.fn(*samples)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.fn(*samples)

        def run_nograd(*inputs):
            for static, value in zip(samples, inputs):
                if static.data_ptr() != value.data_ptr():
                    static.copy_(value)
            graph.replay()
            return tuple(o.clone() for o in static_out)

        return run_nograd


def recomputed(fn, generator: torch.Generator | None, *inputs: Tensor):
    """``fn(*inputs)`` with its activations recomputed during backward (``torch.utils.checkpoint``).

    The recomputation draws the same random numbers as the first run: the global RNG is restored by
    ``checkpoint`` itself; an explicit ``generator`` is rewound here to where the first run started, then
    put back where the rest of the pass left it.
    """
    start = None if generator is None else generator.get_state()
    calls = [0]

    def replay(*args):
        calls[0] += 1
        if start is None or calls[0] == 1:
            return fn(*args)
        now = generator.get_state()
        generator.set_state(start)
        try:
            return fn(*args)
        finally:
            generator.set_state(now)

    return torch.utils.checkpoint.checkpoint(replay, *inputs, use_reentrant=False, preserve_rng_state=True)
