"""The objective: weighted content, style and TV terms over one pass of the network.

The style terms of a level are built once (:class:`StyleTargets`) and may be shared by many
objectives (a :class:`~artstyle.stylizer.Stylizer` keeps them per level size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from artstyle.config import StyleConfig
from artstyle.losses import (
    STYLE_LOSS_SCALE,
    STYLE_LOSSES,
    ContentLoss,
    SlicedWassersteinStyleLoss,
    blend_weights,
    layer_weights,
    tv_loss,
)
from artstyle.network import VGGFeatures


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
    ) -> StyleTargets:
        lw = layer_weights(len(cfg.style_layers), cfg.style_layer_weight_exp)
        bw = blend_weights(len(styles), cfg.style_blend_weights)
        k = STYLE_LOSS_SCALE[cfg.style_loss]
        relative = cfg.loss_normalization == "relative"
        losses = nn.ModuleList()
        terms: list[tuple[int, str, float]] = []
        with torch.no_grad():
            for s, (style, b) in enumerate(zip(styles, bw, strict=True)):
                feats = features(style)
                per_layer = nn.ModuleDict()
                for layer, w in zip(cfg.style_layers, lw, strict=True):
                    if cfg.style_loss == "sliced_wasserstein":
                        per_layer[layer] = SlicedWassersteinStyleLoss(feats[layer], generator)
                    else:
                        per_layer[layer] = STYLE_LOSSES[cfg.style_loss](feats[layer])
                    scale = 1 / max(per_layer[layer].blank_loss(), 1e-12) if relative else k
                    terms.append((s, layer, cfg.style_weight * b * w * scale))
                losses.append(per_layer)
        return cls(losses, terms)


class Objective(nn.Module):
    """Weighted sum of the content, style and TV terms for fixed targets at one size.

    ``total = content_weight * sum_l c_l L_content^l
            + style_weight * sum_s b_s sum_l w_l k L_style^{s,l}
            + tv_weight * L_tv``

    with content-layer shares ``c_l`` (``content_weight_blend``), style blend weights ``b_s``,
    layer weights ``w_l`` (``style_layer_weight_exp``) and the style statistic's scale ``k``.
    One pass of the network serves every term.
    """

    def __init__(
        self,
        net: VGGFeatures,
        cfg: StyleConfig,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor] | StyleTargets,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.net, self.cfg = net, cfg
        self.amp = use_amp(cfg, content.device)
        self.content_terms = [(layer, w * cfg.content_weight) for layer, w in cfg.content_layer_shares()]
        with torch.no_grad():
            content_feats = self.features(content)
            self.content_losses = nn.ModuleDict(
                {layer: ContentLoss(content_feats[layer]) for layer, _ in self.content_terms}
            )
            if cfg.loss_normalization == "relative":
                self.content_terms = [
                    (layer, w / max(self.content_losses[layer].blank_loss(), 1e-12))
                    for layer, w in self.content_terms
                ]
        if not isinstance(styles, StyleTargets):
            styles = StyleTargets.build(self.features, cfg, styles, generator)
        self.style_losses, self.style_terms = styles.losses, styles.terms

    def resample(self) -> None:
        for per_layer in self.style_losses:
            for loss in per_layer.values():
                if isinstance(loss, SlicedWassersteinStyleLoss):
                    loss.resample()

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return network_features(self.net, self.amp, x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(x)
        content = sum(
            (w * self.content_losses[layer](feats[layer]) for layer, w in self.content_terms),
            start=x.new_zeros(()),
        )
        style = sum(
            (w * self.style_losses[s][layer](feats[layer]) for s, layer, w in self.style_terms),
            start=x.new_zeros(()),
        )
        tv = self.cfg.tv_weight * tv_loss(x) if self.cfg.tv_weight > 0 else x.new_zeros(())
        total = content + style + tv
        return total, {"content": content, "style": style, "tv": tv}
