"""artstyle studio: a local web app to stylise, watch the picture form, cancel, and keep a gallery.

The web process (:mod:`artstyle.web.app`) answers the page and the JSON API; runs happen in one
worker process (:mod:`artstyle.web.worker`) fed by the queue of :mod:`artstyle.web.manager`;
everything persists in a data folder (:mod:`artstyle.web.store`). An optional extra:
``pip install "artstyle[web]"``.
"""

#: The studio's limits by default (``artstyle serve --max-upload-mb``, ``--queue-limit``).
MAX_UPLOAD_MB = 25.0
QUEUE_LIMIT = 20
#: Paintings one job may blend.
MAX_STYLES = 8
