"""The model: the VGG weights (:mod:`~artstyle.model.weights`), the feature network
(:mod:`~artstyle.model.network`), the losses, each with its formula (:mod:`~artstyle.model.losses`),
and the optimisers over the pixels (:mod:`~artstyle.model.optimizers`, :mod:`~artstyle.model.lbfgs`)."""
