"""Polygon access: contracts, ownership oracle, SIWE (built by the chain issue)."""
