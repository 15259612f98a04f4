"""Seconds per iteration for each network and optimiser at 256 and 512 px, beside the machine's floor.

The floor is the iteration's FLOPs divided by the measured float32 matrix-multiply rate of this
machine. The FLOPs are those of the convolutions for one forward and one backward pass (to the
input only: the weights are frozen, so the backward costs about one forward), plus the least the
Gram matrices need (``C^2 N`` for the symmetric product, ``2 C^2 N`` for its gradient, per style
layer). Everything else an iteration does (ReLU, pooling, the other losses, the optimiser) counts
as overhead.

This machine is shared, and a neighbour can slow both the iterations and the matrix multiply by
a third. So the rate is measured again just before every timed iteration, and ``x floor`` is the
median over iterations of (iteration time / floor at the rate measured beside it); ``best`` is the
fastest iteration against the highest rate. Run: ``python benchmarks/speed.py [--sizes 256 512]``.

``--precisions float32 bfloat16`` times the network in each (``precision``: bfloat16 is autocast,
the losses and the image stay float32); the header says whether PyTorch finds native bfloat16 on
this CPU (AVX-512 BF16 or AMX: ``torch.ops.mkldnn._is_mkldnn_bf16_supported``). The floor is the
float32 one in both.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

from artstyle import StyleConfig
from artstyle.engine.objective import Objective
from artstyle.engine.runtime import get_weights
from artstyle.images.demo import default_content, default_style
from artstyle.images.geometry import fit_long_side, resize, to_tensor
from artstyle.layers import BLOCKS, CHANNELS
from artstyle.model.network import VGGFeatures, feature_shape, forward_flops
from artstyle.model.optimizers import LevelRun
from artstyle.model.weights import LoadedWeights


def matmul_gflops(n: int = 2048, repeats: int = 8) -> float:
    """Best-of-``repeats`` float32 GEMM rate, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def native_bf16() -> bool:
    """Whether PyTorch finds native bfloat16 arithmetic on this CPU (oneDNN's own test)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def any_weights(network: str) -> LoadedWeights:
    """Real weights where they are to be had offline; speed does not depend on the values."""
    try:
        return get_weights(StyleConfig(network=network))
    except Exception:
        state, cin = {}, 3
        for b, n in enumerate(BLOCKS[network]):
            for i in range(n):
                state[f"conv{b + 1}_{i + 1}.weight"] = torch.randn(CHANNELS[b], cin, 3, 3) * 0.05
                state[f"conv{b + 1}_{i + 1}.bias"] = torch.zeros(CHANNELS[b])
                cin = CHANNELS[b]
        return LoadedWeights(state, "caffe", "random")


def iteration_gflop(cfg: StyleConfig, height: int, width: int) -> float:
    """The FLOPs of one iteration that the floor counts (see the module docstring), in GFLOP."""
    flops = 2 * forward_flops(cfg.network, cfg.active_layers(), height, width)
    for layer in cfg.style_layers:
        c, h, w = feature_shape(cfg.network, layer, height, width)
        flops += 3 * c * c * h * w
    return flops / 1e9


@dataclass
class Timing:
    seconds: list[float]  # per timed iteration
    rates: list[float]  # GFLOP/s measured just before each

    def ratio(self, gflop: float) -> float:
        return statistics.median(s / (gflop / r) for s, r in zip(self.seconds, self.rates, strict=True))

    def best(self, gflop: float) -> float:
        return min(self.seconds) / (gflop / max(self.rates))


def time_iterations(cfg: StyleConfig, size: int, iterations: int, channels_last: bool = True) -> Timing:
    weights = any_weights(cfg.network)
    net = VGGFeatures(cfg.network, weights, cfg.active_layers(), cfg.pooling, channels_last=channels_last)
    content, style = default_content(), default_style(size)
    dims = fit_long_side(content.size, size)
    c = to_tensor(resize(content, dims))
    objective = Objective(net, cfg, c, [to_tensor(style)])
    run = LevelRun(objective, c, cfg)
    for _ in range(2):  # warm-up
        run.step()
    timing = Timing([], [])
    for _ in range(iterations):
        timing.rates.append(matmul_gflops(repeats=3))
        t = time.perf_counter()
        run.step()
        timing.seconds.append(time.perf_counter() - t)
    return timing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--networks", nargs="+", default=["vgg19", "vgg16"])
    ap.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"])
    ap.add_argument("--iterations", type=int, default=7)
    ap.add_argument("--layouts", action="store_true", help="also time the NCHW layout")
    ap.add_argument("--precisions", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"float32 matmul rate {matmul_gflops():.1f} GFLOP/s (2048^2, best of 8), "
        f"native bfloat16 on this CPU: {native_bf16()}\n"
    )
    print(
        f"{'network':8} {'optimizer':9} {'precision':9} {'size':>9} {'layout':>13} {'GFLOP/it':>9} "
        f"{'GFLOP/s':>8} {'floor s/it':>10} {'s/it':>7} {'x floor':>7} {'best':>5}"
    )
    for size in args.sizes:
        for network in args.networks:
            for optimizer, precision in [(o, p) for o in args.optimizers for p in args.precisions]:
                cfg = StyleConfig(network=network, optimizer=optimizer, size=size, scales=1)
                cfg = cfg.replace(precision=precision)
                w, h = fit_long_side(default_content().size, size)
                gflop = iteration_gflop(cfg, h, w)
                for layout in [True, False] if args.layouts else [True]:
                    t = time_iterations(cfg, size, args.iterations, channels_last=layout)
                    rate = statistics.median(t.rates)
                    print(
                        f"{network:8} {optimizer:9} {precision:9} {f'{w}x{h}':>9} "
                        f"{'channels_last' if layout else 'nchw':>13} {gflop:9.1f} {rate:8.1f} "
                        f"{gflop / rate:10.3f} {statistics.median(t.seconds):7.3f} "
                        f"{t.ratio(gflop):7.2f} {t.best(gflop):5.2f}",
                        flush=True,
                    )
    print(
        "\nGFLOP/s: median of the rates measured beside the iterations; s/it: median; x floor: median "
        "of the per-iteration ratios; best: fastest iteration against the highest rate."
    )


if __name__ == "__main__":
    main()
