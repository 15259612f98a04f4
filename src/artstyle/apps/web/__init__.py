"""artstyle studio: a local web app to stylise, watch the picture form, cancel, and keep a gallery.

The web process (:mod:`artstyle.apps.web.app`) answers the page and the JSON API; runs happen in one
worker process (:mod:`artstyle.apps.web.worker`) fed by the queue of :mod:`artstyle.apps.web.manager`;
everything persists in a data folder (:mod:`artstyle.apps.web.store`). An optional extra:
``pip install "artstyle[web]"``.
"""

#: The studio's limits by default (``artstyle serve --max-upload-mb``, ``--queue-limit``).
MAX_UPLOAD_MB = 25.0
QUEUE_LIMIT = 20
#: Paintings one job may blend.
MAX_STYLES = 8
#: The longest side the studio paints (larger pictures are the command line's, in tiles); uploads
#: are kept at most this large.
MAX_SIDE = 4096
#: Uploads over this many pixels are refused from their header, before decoding (a 48 MP phone
#: photo passes). With MAX_SIDE this bounds what one upload can cost the server: measured by
#: ``benchmarks/memory.py --decoding``.
MAX_UPLOAD_PIXELS = 50_000_000
#: A clip the studio paints: at most this many frames (10 s at 30 fps), at most this many pixels
#: on its long side (a clip is painted frame after frame: about 20 s a frame at 256 px on two
#: cores; ``benchmarks/video.py``). Longer or larger clips are the command line's (``artstyle video``).
MAX_CLIP_FRAMES = 300
MAX_CLIP_SIDE = 512
