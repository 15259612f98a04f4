"""The apps, what people use: the command (:mod:`~artstyle.apps.cli`), the studio
(:mod:`~artstyle.apps.web`) and the study (:mod:`~artstyle.apps.study`). The top wing: nothing
below imports it."""
