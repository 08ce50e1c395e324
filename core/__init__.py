"""Pure vocabulary and sans-IO logic shared by every layer.

Nothing here performs I/O or imports an async framework; time is passed in as `now`.
"""
