"""The demo behind `make demo`: pvekit against a local fake PVE cluster."""
