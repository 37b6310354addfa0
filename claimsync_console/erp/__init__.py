"""erp layer."""
