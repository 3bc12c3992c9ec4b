"""PII and secret detection, masking and restoring."""
