"""The studio's routes, one router per resource: the page (:mod:`.page`), the settings
(:mod:`.config`), the images (:mod:`.images`) and the jobs (:mod:`.jobs`). They reach the data
folder, the job manager and the limits through :mod:`.common`'s dependencies."""
