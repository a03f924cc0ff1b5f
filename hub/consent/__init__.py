"""Consent registry and THE gate every disclosure passes (see docs/consent.md)."""
