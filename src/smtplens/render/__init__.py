"""Renderings of the core's values: a neutral document, then text, markdown, html or JSON."""
