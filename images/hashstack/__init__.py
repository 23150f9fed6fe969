"""hashstack: hello, persistence and hash, three small Flask services under gunicorn."""

__version__ = "0.1.0"
