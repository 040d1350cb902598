"""Contract tests shared by every implementation of a protocol."""
