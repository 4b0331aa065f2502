"""Peer servers for `make bench`: each runs in its own process, importing nothing of ours."""
