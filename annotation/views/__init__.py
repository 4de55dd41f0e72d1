"""The HTML + htmx pages, one module per area (thin: parse, call one service or selector, render).

- pages.py:     home, project pages and settings, image and media files
- rate.py:      the rating page and its stage (annotation.rating), history, revise, calibration
- dashboard.py: the lead dashboards (snapshot reads only), adjudication, rater management
- releases.py:  cutting, publishing and downloading releases
"""

from .pages import media_file

__all__ = ["media_file"]
