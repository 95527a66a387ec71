"""Harvesting local storage: walk a source, group files, extract metadata, feed the catalog."""
