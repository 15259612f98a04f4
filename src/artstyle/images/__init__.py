"""Images in and out, and their geometry: :mod:`~artstyle.images.decode` (any file to a clean RGB
image, bounded by the size the run needs), :mod:`~artstyle.images.encode` (tagged, atomic outputs),
:mod:`~artstyle.images.geometry` (sizes, resizing, tensors) and :mod:`~artstyle.images.demo` (the
built-in photo and painting). The wing imports nothing above :mod:`artstyle.config`."""
