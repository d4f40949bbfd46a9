"""The synthetic bank: a complete warehouse with a known truth, shaped like a bank."""
