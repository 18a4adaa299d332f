"""The XLA options the engine compiles its kernels with (``jax.jit(..., compiler_options=KERNEL)``).

XLA's CPU backend asks LLVM for 256-bit vectors by default, also on CPUs with AVX-512. The kernel
runs faster with 512-bit ones where the CPU has them: the reference day (``benchmarks/reference.toml``,
4096 paths x 1440 steps, 2 CPU devices, 7 Dec on the README's 2-core Intel Xeon with AVX-512) took
1.22-1.40 s (median 1.39 s) against 1.30-1.56 s (median 1.54 s), five runs each, interleaved, each in its
own process. The outputs are bit-identical (all 325 outputs of the 8 shipped scenario and historical
configs at 600 paths), as the arithmetic is the same lane by lane. A CPU without AVX-512 gets the widest
vectors it has, as before. The option is one of XLA's CPU options, which its GPU compiler does not read
(not yet checked on a GPU: ``benchmarks/gpu.py`` has not run on one).

A user's own ``--xla_cpu_prefer_vector_width`` in ``XLA_FLAGS`` wins: then the engine sets nothing.
"""

from __future__ import annotations

import os

VECTOR_WIDTH_FLAG = "xla_cpu_prefer_vector_width"
VECTOR_WIDTH_BITS = 512
"""Vector width preferred for the CPU kernels, bits."""


def kernel_options() -> dict[str, int]:
    """The compiler options for the engine's kernels: the CPU vector width, unless ``XLA_FLAGS`` sets it."""
    if VECTOR_WIDTH_FLAG in os.environ.get("XLA_FLAGS", ""):
        return {}
    return {VECTOR_WIDTH_FLAG: VECTOR_WIDTH_BITS}


KERNEL = kernel_options()
"""Compiler options of the engine's jitted kernels, read once at import (as XLA reads ``XLA_FLAGS``)."""
