"""Reports of stresslab results: PNG figures, a Markdown summary and a self-contained HTML page."""

from stresslab.report.build import HTML_FILE, ResultError, default_directory, load_result, write_report

__all__ = ["HTML_FILE", "ResultError", "default_directory", "load_result", "write_report"]
