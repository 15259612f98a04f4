"""The engine: one run's plan (:mod:`~artstyle.engine.plan`: levels, tiles, detail, work), the
levels' sizes (:mod:`~artstyle.engine.pyramid`), tiles and their blend (:mod:`~artstyle.engine.tiles`),
the objective as a sum of terms (:mod:`~artstyle.engine.objective`), colour and masks, the device
and memory (:mod:`~artstyle.engine.runtime`) and the :class:`~artstyle.engine.stylizer.Stylizer`
that paints a plan, here or through a tile painter. Tensors and PIL images in and out: no files."""
