"""Seconds per iteration for each network and optimiser at 256 and 512 px, beside the machine's floor.

The floor is the network's FLOPs for one forward and one backward pass (to the input only: the
weights are frozen, so the backward costs about one forward) divided by the measured float32
matrix-multiply rate of this machine. Run: ``python benchmarks/speed.py [--sizes 256 512]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from artstyle import StyleConfig
from artstyle.images import default_content, default_style, fit_long_side, resize, to_tensor
from artstyle.network import VGGFeatures, forward_flops
from artstyle.optimize import Objective, _LevelRun, get_weights
from artstyle.weights import BLOCKS, CHANNELS, LoadedWeights


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


def seconds_per_iteration(cfg: StyleConfig, size: int, iterations: int, channels_last: bool = True) -> float:
    weights = any_weights(cfg.network)
    net = VGGFeatures(cfg.network, weights, cfg.active_layers(), cfg.pooling, channels_last=channels_last)
    content, style = default_content(), default_style(size)
    dims = fit_long_side(content.size, size)
    c = to_tensor(resize(content, dims))
    objective = Objective(net, cfg, c, [to_tensor(style)])
    run = _LevelRun(objective, c, cfg, None)
    for _ in range(2):  # warm-up
        run.step()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        run.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--networks", nargs="+", default=["vgg19", "vgg16"])
    ap.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"])
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--layouts", action="store_true", help="also time the NCHW layout")
    args = ap.parse_args()
    rate = matmul_gflops()
    rows = []
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"measured float32 matmul rate {rate:.1f} GFLOP/s\n"
    )
    print(
        f"{'network':8} {'optimizer':9} {'size':>9} {'layout':>13} {'GFLOP/it':>9} "
        f"{'floor s/it':>10} {'s/it':>7} {'x floor':>7}"
    )
    for size in args.sizes:
        for network in args.networks:
            for optimizer in args.optimizers:
                cfg = StyleConfig(network=network, optimizer=optimizer, size=size, scales=1)
                w, h = fit_long_side(default_content().size, size)
                gflop = 2 * forward_flops(network, cfg.active_layers(), h, w) / 1e9
                for layout in [True, False] if args.layouts else [True]:
                    s = seconds_per_iteration(cfg, size, args.iterations, channels_last=layout)
                    row = (network, optimizer, f"{w}x{h}", "channels_last" if layout else "nchw", gflop, s)
                    rows.append(row)
                    _print_row(row, rate)
    # The GEMM rate is measured again at the end and the floors use the better reading, so that a
    # noisy neighbour during the first reading cannot flatter the ratios.
    best = max(rate, matmul_gflops())
    if best > rate * 1.02:
        print(f"\nmatmul rate re-measured at {best:.1f} GFLOP/s; the ratios against that floor:")
        for row in rows:
            _print_row(row, best)


def _print_row(row: tuple[str, str, str, str, float, float], rate: float) -> None:
    network, optimizer, dims, layout, gflop, s = row
    floor = gflop / rate
    ratio = s / floor
    print(
        f"{network:8} {optimizer:9} {dims:>9} {layout:>13} {gflop:9.1f} {floor:10.3f} {s:7.3f} {ratio:7.2f}"
    )


if __name__ == "__main__":
    main()
