"""Block store, UnixFS importer/exporter, pins, CAR and world packages (built by the storage issue)."""
