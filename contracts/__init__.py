"""Solidity sources and compiled artifacts shipped as package data (built by the chain issue)."""
