"""x12 layer."""
