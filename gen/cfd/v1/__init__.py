"""Generated from proto/cfd/v1 by tools/protogen.py; do not edit."""
