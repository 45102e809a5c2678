"""gradspec's own tests."""
