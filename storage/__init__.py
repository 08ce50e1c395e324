"""Block store, UnixFS, pins, CAR and world packages (built by the storage issue)."""
