"""Video without flicker (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos").

Stylising each frame on its own flickers: every frame finds a different local optimum. Here each
frame after the first starts from the previous stylised frame warped by optical flow, and a
temporal term keeps it close to that warped frame where the flow is reliable:

``L_temporal = sum_x c(x) (x_t(x) - w(x))^2 / sum_x c(x) w(x)^2``

with ``w`` the previous output warped onto frame t and ``c`` the reliability: 0 where the forward
and backward flows disagree (occlusions, ``|b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5``)
and at motion boundaries (``|grad b|^2 > 0.01 |b|^2 + 0.002``), 1 elsewhere; it is normalised like
the other relative terms (1 at an all-black image). Flow is OpenCV's DIS (or Farneback) on the input
frames; decoding and encoding are PyAV's (its wheel carries FFmpeg). Both are the ``video`` extra.

Frames are written as they finish into a folder (the output folder, or ``OUT.frames/`` beside an
``.mp4``), with a progress record, so Ctrl-C keeps them and the same command resumes; the video is
encoded at the end, atomically, with the input's frame rate and audio.
"""

from __future__ import annotations

from typing import Any

from artstyle.errors import ArtstyleError


def libs() -> tuple[Any, Any]:
    try:
        import av
        import cv2
    except ImportError:
        raise ArtstyleError('video needs the video extra: pip install "artstyle[video]"') from None
    return av, cv2
