"""The study: grids of photos x paintings and experiments that vary the result."""
