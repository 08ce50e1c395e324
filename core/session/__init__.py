"""Live sessions, sans-IO: seats and instance placement, world state, presence, chat, frames.

The edges (p2p/, gateway/, node/) move the bytes; everything here takes `now` as an argument.
"""
