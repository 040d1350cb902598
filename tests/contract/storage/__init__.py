"""The storage contract suite (storage/base.py): one suite, every backend."""
