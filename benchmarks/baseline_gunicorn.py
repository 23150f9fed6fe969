"""The project's gunicorn config with the worker-balance fix undone: one listening socket that
all workers share. `make bench` starts hello with it and with the real config, in turn, to show
what SO_REUSEPORT changes."""

from hashstack.gunicorn_conf import *  # noqa: F403 (every setting, then one override)

reuse_port = False
