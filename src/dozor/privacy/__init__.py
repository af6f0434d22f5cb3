"""Privacy: the audit log (and, next, export, erasure, retention plans, field encryption)."""
