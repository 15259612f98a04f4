"""The objective: weighted content, style and TV terms over one pass of the network.

The style terms of a level are built once (:class:`StyleTargets`) and may be shared by many
objectives (a :class:`~artstyle.engine.stylizer.Stylizer` keeps them per level size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from artstyle.config import StyleConfig
from artstyle.engine.tiles import HALO
from artstyle.layers import layer as layer_entry
from artstyle.model.losses import (
    STYLE_LOSS_SCALE,
    STYLE_LOSSES,
    AnchorLoss,
    ContentLoss,
    FeatureStats,
    Guided,
    SlicedWassersteinStyleLoss,
    blend_weights,
    layer_weights,
    tv_loss,
)
from artstyle.model.network import VGGFeatures, guide_at


def use_amp(cfg: StyleConfig, device: torch.device) -> bool:
    """Whether the network runs in bfloat16 autocast (``precision``; auto: on CUDA only)."""
    return cfg.precision == "bfloat16" or (cfg.precision == "auto" and device.type == "cuda")


def network_features(net: VGGFeatures, amp: bool, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network's activations, in float32 (computed in bfloat16 when ``amp``)."""
    if not amp:
        return net(x)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        feats = net(x)
    return {k: v.float() for k, v in feats.items()}


@dataclass
class StyleTargets:
    """The style terms of one level size: one loss module per painting and layer, holding its
    target statistic, and their weights ``(painting, layer, weight)``. Built once per size and
    kept by :class:`Stylizer`, so many photos pay for the paintings' passes once."""

    losses: nn.ModuleList
    terms: list[tuple[int, str, float]]

    @classmethod
    def build(
        cls,
        features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        cfg: StyleConfig,
        styles: Sequence[torch.Tensor],
        generator: torch.Generator | None = None,
        tile: int = 0,
        native: Sequence[torch.Tensor] = (),
        native_layers: Sequence[str] = (),
    ) -> StyleTargets:
        """The terms of ``styles`` (tensors at their size for the level). ``tile``: read a painting
        larger than this in tiles (:func:`painting_stats`; Gram and mean-covariance targets only),
        so that its pass stays within a tiled level's memory. ``native``: the same paintings at
        another size (at a detail level, no more than their own pixels), whose statistics are the
        targets of ``native_layers`` instead."""
        lw = layer_weights(len(cfg.style_layers), cfg.style_layer_weight_exp)
        bw = blend_weights(len(styles), cfg.style_blend_weights)
        k = STYLE_LOSS_SCALE[cfg.style_loss]
        relative = cfg.loss_normalization == "relative"
        losses = nn.ModuleList()
        terms: list[tuple[int, str, float]] = []
        own = set(native_layers) if native else set()
        with torch.no_grad():
            for s, (style, b) in enumerate(zip(styles, bw, strict=True)):
                at = {layer: style for layer in cfg.style_layers}
                at.update({layer: native[s] for layer in own})
                made: dict[str, nn.Module] = {}
                for image in {id(x): x for x in at.values()}.values():  # (one pass per size)
                    layers = [layer for layer in cfg.style_layers if at[layer] is image]
                    made.update(_style_losses(features, cfg, image, layers, tile, generator))
                per_layer = nn.ModuleDict({layer: made[layer] for layer in cfg.style_layers})
                for layer, w in zip(cfg.style_layers, lw, strict=True):
                    scale = 1 / max(per_layer[layer].blank_loss(), 1e-12) if relative else k
                    terms.append((s, layer, cfg.applied_style_weight * b * w * scale))
                losses.append(per_layer)
        return cls(losses, terms)


def _style_losses(
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    cfg: StyleConfig,
    style: torch.Tensor,
    layers: Sequence[str],
    tile: int,
    generator: torch.Generator | None,
) -> dict[str, nn.Module]:
    """The loss modules of ``layers`` with ``style``'s statistics as targets (see
    :meth:`StyleTargets.build`)."""
    if tile and cfg.style_loss != "sliced_wasserstein" and max(style.shape[-2:]) > tile:
        stats = painting_stats(features, style, cfg.network, layers, tile)
        return {layer: STYLE_LOSSES[cfg.style_loss](stats=stats[layer]) for layer in layers}
    feats = features(style)
    if cfg.style_loss == "sliced_wasserstein":
        return {layer: SlicedWassersteinStyleLoss(feats[layer], generator) for layer in layers}
    return {layer: STYLE_LOSSES[cfg.style_loss](feats[layer]) for layer in layers}


def painting_stats(
    features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    image: torch.Tensor,
    network: str,
    layers: Sequence[str],
    tile: int,
) -> dict[str, FeatureStats]:
    """The sums behind the Gram and mean-covariance targets of ``image`` (1, 3, H, W), read in
    pieces of ``tile`` px (rounded to 16) each with a :data:`HALO` of context: a piece's positions
    are counted at each layer once, where the layer's grid (``2^pools`` px a cell, from the layer
    table) falls inside the piece. Exact but for the zero padding at the halo's edge."""
    h, w = image.shape[-2:]
    step = max(16, tile - tile % 16)
    out: dict[str, FeatureStats] = {}
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(h, y0 + step), min(w, x0 + step)
            cy0, cx0 = max(0, y0 - HALO), max(0, x0 - HALO)
            cy1, cx1 = min(h, y1 + HALO), min(w, x1 + HALO)
            feats = features(image[..., cy0:cy1, cx0:cx1])
            for name in layers:
                k = 2 ** layer_entry(network, name).pools
                f = feats[name][..., (y0 - cy0) // k : (y1 - cy0) // k, (x0 - cx0) // k : (x1 - cx0) // k]
                if name not in out:
                    out[name] = FeatureStats.empty(f.shape[1])
                out[name].add(f)
    return out


@dataclass
class Term:
    """One weighted term of the objective: ``weight * loss(features, x)``.

    ``kind`` groups terms for reporting (``content``, ``style``, ``tv``; a new kind, such as a
    video's temporal term, is reported under its own name). ``layer`` is the activation the
    loss reads (``loss(features[layer])``), or None for a term of the pixels (``loss(x)``).
    """

    kind: str
    weight: float
    loss: Callable[[torch.Tensor], torch.Tensor]
    layer: str | None = None

    def __call__(self, features: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.weight * self.loss(x if self.layer is None else features[self.layer])


class ReducedStyle(nn.Module):
    """``L_look = sum_{s,l} w_{s,l} L_style^{s,l}(F_l(D x))``: the picture reduced by ``factor``
    (``D``: bilinear with antialiasing) held to the paintings' statistics at that size (``targets``,
    with their weights). At a detail level it keeps the look of the picture painted at
    ``paint_size``: the level's own style terms hold the finest scale, this one the scale the
    picture was painted at (multi-scale style statistics, as in Snelgrove 2017)."""

    def __init__(
        self,
        features: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        targets: StyleTargets,
        factor: float,
    ) -> None:
        super().__init__()
        self.features, self.targets, self.factor = features, targets, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (round(h / self.factor), round(w / self.factor))
        feats = self.features(F.interpolate(x, size=size, mode="bilinear", antialias=True))
        losses = self.targets.losses
        return sum(
            (w * losses[s][layer](feats[layer]) for s, layer, w in self.targets.terms), x.new_zeros(())
        )


@dataclass
class Detail:
    """What holds a detail level (see :mod:`artstyle.engine.pyramid`) to the picture below it: the
    anchor's ``sigma`` (px; 0 = none), and the paintings' terms at the size the picture was
    painted at (``look``; None = none) with the ``factor`` from this level to that size."""

    sigma: float = 0.0
    look: StyleTargets | None = None
    factor: float = 1.0

    def terms(self, objective: Objective, start: torch.Tensor, cfg: StyleConfig) -> list[Term]:
        """The terms for a level (or tile) that starts from ``start``: the anchor,
        ``detail_anchor`` over the blurred start's magnitude, and the look, ``detail_style`` times
        the terms' own weights (the plan leaves it out where it cannot hold:
        :class:`~artstyle.engine.plan.Level`)."""
        terms = []
        if self.sigma:
            anchor = AnchorLoss(start, self.sigma)
            terms.append(Term("anchor", cfg.detail_anchor / max(anchor.blank_loss(), 1e-12), anchor))
        if self.look is not None:
            look = ReducedStyle(objective.features, self.look, self.factor)
            terms.append(Term("look", cfg.detail_style, look))
        return terms


#: The kinds every objective reports, even with no term of that kind (a zero).
KINDS = ("content", "style", "tv")


class Objective(nn.Module):
    """The weighted sum of the terms it is given, over one pass of the network.

    The standard terms (:meth:`terms_for`) are Gatys et al.'s:

    ``total = content_weight * sum_l c_l L_content^l / n_l
            + style_weight * sum_s b_s sum_l w_l L_style^{s,l} / m_{s,l}
            + tv_weight * L_tv``

    with content-layer shares ``c_l`` (``content_weight_blend``), style blend weights ``b_s``,
    layer weights ``w_l`` (``style_layer_weight_exp``) and normalisers ``n``, ``m``: each term's
    loss at a blank feature map (``loss_normalization = relative``), or 1 for content and the
    style statistic's scale for style (``absolute``). With masks each painting's style terms are
    guided to its region. More terms (a video's temporal term) are appended to ``terms``; the loss
    is their sum, reported by kind.
    """

    def __init__(
        self,
        net: VGGFeatures,
        cfg: StyleConfig,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor] | StyleTargets,
        generator: torch.Generator | None = None,
        masks: Sequence[torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.net, self.cfg = net, cfg
        self.masks = masks
        self.amp = use_amp(cfg, content.device)
        if not isinstance(styles, StyleTargets):
            styles = StyleTargets.build(self.features, cfg, styles, generator)
        self.style_losses = styles.losses  # (registered, so that .to(device) moves them)
        self.terms: list[Term] = self.terms_for(content, styles)

    def terms_for(self, content: torch.Tensor, styles: StyleTargets) -> list[Term]:
        """The content terms of ``content``, the style terms of ``styles`` and TV."""
        cfg = self.cfg
        terms = []
        with torch.no_grad():
            content_feats = self.features(content)
            for layer, share in cfg.content_layer_shares():
                loss = ContentLoss(content_feats[layer])
                w = share * cfg.content_weight
                if cfg.loss_normalization == "relative":
                    w = w / max(loss.blank_loss(), 1e-12)
                terms.append(Term("content", w, loss, layer))
        if self.masks is None:
            terms += [Term("style", w, styles.losses[s][layer], layer) for s, layer, w in styles.terms]
        else:
            terms += self.guided_style_terms(styles, content_feats)
        if cfg.applied_tv_weight > 0:  # (scaled with a strength under the default: 0 keeps the photo)
            terms.append(Term("tv", cfg.applied_tv_weight, tv_loss))
        return terms

    def guided_style_terms(self, styles: StyleTargets, feats: dict[str, torch.Tensor]) -> list[Term]:
        """Each painting's terms guided by its mask (:class:`~artstyle.model.losses.Guided`), the mask
        carried to each layer through the network's pooling. A painting's blend weight is relative
        to the largest one (each region gets the full style weight, not a share of it); a layer
        where a mask has vanished gets no term."""
        cfg, masks = self.cfg, self.masks
        assert masks is not None
        bw = blend_weights(len(masks), cfg.style_blend_weights)
        terms = []
        for s, layer, w in styles.terms:
            m = guide_at(masks[s], cfg.network, layer, tuple(feats[layer].shape[-2:]), cfg.pooling)
            if float(m.sum()) > 0:
                terms.append(Term("style", w / max(bw), Guided(styles.losses[s][layer], m), layer))
        return terms

    def resample(self) -> None:
        for per_layer in self.style_losses:
            for loss in per_layer.values():
                if isinstance(loss, SlicedWassersteinStyleLoss):
                    loss.resample()

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return network_features(self.net, self.amp, x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(x)
        kinds = list(dict.fromkeys([*KINDS, *(t.kind for t in self.terms)]))
        parts = {
            kind: sum((t(feats, x) for t in self.terms if t.kind == kind), start=x.new_zeros(()))
            for kind in kinds
        }
        total = sum(parts.values(), start=x.new_zeros(()))
        return total, parts
