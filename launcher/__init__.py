"""The `cfd` command: the one place that knows every service and starts them by name."""
