"""Persistent identifiers: ARK minting and resolution, DataCite DOIs (DESIGN §6)."""
