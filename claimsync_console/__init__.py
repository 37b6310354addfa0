"""ClaimSync Console: keeps X12 claims and remittances in step with the ERP."""

__version__ = "0.1.0"
