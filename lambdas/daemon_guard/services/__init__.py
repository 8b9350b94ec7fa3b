"""The service layer: what the entry points and workflows do with the ports (placement, starts, exits, audits)."""
