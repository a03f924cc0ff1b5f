"""The transfer log: an RFC 9162 Merkle tree of audit events with signed checkpoints."""
