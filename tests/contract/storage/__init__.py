"""The storage contract suite (core/storage.py): one suite, every backend."""
