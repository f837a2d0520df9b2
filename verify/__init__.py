"""Verification side of the gateway: unified verification codes, the registry, the directory."""
