"""Block store, UnixFS, pins, CAR and world packages."""
