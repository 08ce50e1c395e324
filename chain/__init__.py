"""Polygon access: contracts, ownership oracle, SIWE."""
