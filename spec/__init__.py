"""Machine-readable contracts shipped with gradspec (data only)."""
