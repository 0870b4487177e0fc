"""The remediation plan: what to upgrade, to what, and whether torch's companions and build follow."""
