"""Package data: the Jinja templates of the HTML report (read with importlib.resources)."""
