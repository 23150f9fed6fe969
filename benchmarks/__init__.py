"""`make bench`: the services measured against this machine's own ceiling (see run.py)."""
