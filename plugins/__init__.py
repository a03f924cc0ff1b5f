"""Built-in plugins that are not connectors (witnesses, exports, evidence verifiers)."""
