"""Harvesting local storage: walk a source folder, group files, extract metadata, feed the catalog."""
